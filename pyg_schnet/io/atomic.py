"""Atomic file writes: a reader never sees a half-written file, and an
interrupted write (kill -9, full disk, power loss after the call returned)
leaves the previous file intact.

Every write goes to a temporary file in the *same folder* as the target
(so the final rename never crosses a filesystem), is flushed to disk with
``fsync``, renamed over the target with :func:`os.replace`, and the folder
itself is ``fsync``-ed so the rename survives a crash.
"""
import csv
import errno
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Dict, Iterable, Iterator, Optional, Sequence, Union

PathLike = Union[str, os.PathLike]


def _fsync_folder(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without folder fds
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover - e.g. some network filesystems
        pass
    finally:
        os.close(fd)


class DiskFullError(OSError):
    r"""A write failed because the disk is full; names the file and the
    space left."""


def disk_full_error(error: BaseException, path: PathLike
                    ) -> Optional[DiskFullError]:
    r"""A :class:`DiskFullError` naming :obj:`path` when :obj:`error` is
    a write that failed for lack of space (``ENOSPC``/``EDQUOT``, or a
    writer's own error such as torch's "file write failed" while the disk
    has less than 1 MB left), else :obj:`None`."""
    folder = Path(path).absolute().parent
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        free = None
    errors = (errno.ENOSPC, getattr(errno, 'EDQUOT', errno.ENOSPC))
    cause = error
    while cause is not None:
        if isinstance(cause, OSError) and cause.errno in errors:
            break
        cause = cause.__cause__ or cause.__context__
    if cause is None and not (free is not None and free < 2**20 and
                              'write' in str(error).lower()):
        return None
    left = f' ({free / 1e6:.1f} MB left there)' if free is not None else ''
    return DiskFullError(errno.ENOSPC, f'No space left on device while '
                         f'writing {path}{left}; the previous file, if any, '
                         f'is untouched')


def commit_file(tmp: PathLike, path: PathLike) -> None:
    r"""Gives the finished file :obj:`tmp` the name :obj:`path` (same
    folder): its content is synced to disk, it replaces :obj:`path` in one
    :func:`os.replace`, and the folder is synced so the rename survives a
    crash."""
    with open(tmp, 'rb+') as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)
    _fsync_folder(Path(path).absolute().parent)


@contextmanager
def atomic_path(path: PathLike) -> Iterator[Path]:
    r"""Yields a temporary path next to :obj:`path`; when the block ends
    without error, the temporary file is synced to disk and replaces
    :obj:`path` in one :func:`os.replace` (atomic on POSIX). On error it is
    removed and :obj:`path` is untouched.

    Raises:
        PermissionError: naming the folder, if it cannot be written.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # The suffix is kept: writers such as ase.io.write infer the format
        # from it. The leading dot hides the temporary file.
        fd, tmp = tempfile.mkstemp(prefix=f'.{path.name}.',
                                   suffix=path.suffix, dir=path.parent)
    except PermissionError as e:
        raise PermissionError(f'cannot write to {path.parent}: permission '
                              f'denied') from e
    os.close(fd)
    tmp = Path(tmp)
    # mkstemp creates 0600 files; give the result the usual permissions.
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    try:
        yield tmp
        commit_file(tmp, path)
    except Exception as e:
        full = disk_full_error(e, path)
        if full is not None:
            raise full from e
        raise
    finally:
        if tmp.exists():
            tmp.unlink()


def atomic_torch_save(obj: Any, path: PathLike) -> None:
    r""":func:`torch.save` to :obj:`path`, atomically."""
    import torch
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def atomic_write_text(path: PathLike, text: str) -> None:
    r"""Writes :obj:`text` (UTF-8) to :obj:`path`, atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding='utf-8')


def atomic_write_csv(path: PathLike, rows: Iterable[Dict[str, Any]],
                     fields: Sequence[str]) -> None:
    r"""Writes :obj:`rows` (dicts keyed by :obj:`fields`) as a CSV file
    with a header, atomically."""
    with atomic_path(path) as tmp:
        with open(tmp, 'w', newline='', encoding='utf-8') as f:
            writer = csv.DictWriter(f, fieldnames=list(fields))
            writer.writeheader()
            writer.writerows(rows)
