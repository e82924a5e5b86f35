"""Atomic file writes: a reader never sees a half-written file, and an
interrupted write leaves the previous file intact."""
import hashlib
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Union

import torch

PathLike = Union[str, os.PathLike]


@contextmanager
def atomic_path(path: PathLike) -> Iterator[Path]:
    r"""Yields a temporary path next to :obj:`path`; when the block ends
    without error, the temporary file replaces :obj:`path` in one
    :func:`os.replace` (atomic on POSIX). On error it is removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f'.{path.name}.', suffix=path.suffix,
                               dir=path.parent)
    os.close(fd)
    tmp = Path(tmp)
    # mkstemp creates 0600 files; give the result the usual permissions.
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    try:
        yield tmp
        with open(tmp, 'rb+') as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def atomic_torch_save(obj: Any, path: PathLike) -> None:
    r""":func:`torch.save` to :obj:`path`, atomically."""
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def atomic_write_text(path: PathLike, text: str) -> None:
    r"""Writes :obj:`text` to :obj:`path`, atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def atomic_save_dataset(data_list, path: PathLike) -> None:
    r"""Collates :obj:`data_list` and writes it in the format of
    :meth:`torch_geometric.data.InMemoryDataset.save`, atomically (PyG's own
    :meth:`save` writes in place, so an interrupted processing step would
    leave a truncated file that the next run trusts)."""
    from torch_geometric.data import InMemoryDataset

    data, slices = InMemoryDataset.collate(data_list)
    atomic_torch_save((data.to_dict(), slices, data.__class__), path)


def pre_processing_key(pre_transform, pre_filter) -> str:
    r"""A short name for a dataset's pre-processing (:obj:`"plain"` for
    none), used as the name of its processed folder."""
    if pre_transform is None and pre_filter is None:
        return 'plain'
    text = f'{pre_transform!r}|{pre_filter!r}'
    return 'pre_' + hashlib.sha1(text.encode()).hexdigest()[:12]
