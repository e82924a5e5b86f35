"""Processed dataset caches, written atomically and read without running
code: the base of :class:`~pyg_schnet.data.QM9` and
:class:`~pyg_schnet.data.AtomsDataset`."""
import hashlib
import os
import os.path as osp
from typing import Union

from torch_geometric.data import Data, InMemoryDataset

from pyg_schnet.io import CorruptFileError, atomic_torch_save, safe_load

PathLike = Union[str, os.PathLike]


def atomic_save_dataset(data_list, path: PathLike) -> None:
    r"""Collates :obj:`data_list` and writes it in the format of
    :meth:`torch_geometric.data.InMemoryDataset.save`, atomically (PyG's own
    :meth:`save` writes in place, so an interrupted processing step would
    leave a truncated file that the next run trusts)."""
    data, slices = InMemoryDataset.collate(data_list)
    atomic_torch_save((data.to_dict(), slices, data.__class__), path)


def pre_processing_key(pre_transform, pre_filter) -> str:
    r"""A short name for a dataset's pre-processing (:obj:`"plain"` for
    none), used as the name of its processed folder."""
    if pre_transform is None and pre_filter is None:
        return 'plain'
    text = f'{pre_transform!r}|{pre_filter!r}'
    return 'pre_' + hashlib.sha1(text.encode()).hexdigest()[:12]


class CachedInMemoryDataset(InMemoryDataset):
    r"""An :class:`~torch_geometric.data.InMemoryDataset` whose processed
    file is only ever read with :obj:`weights_only=True`.

    PyG's own loading retries a failed safe load with
    :obj:`weights_only=False`, and its :meth:`_process` unpickles
    ``pre_transform.pt``/``pre_filter.pt`` with :obj:`weights_only=False`:
    a tampered cache folder would run code. Here neither happens: the
    processed folder's name already encodes the pre-processing
    (:func:`pre_processing_key`), so those files are neither read nor
    written, and a cache file that fails the safe load is reported
    (naming it) rather than trusted. Nothing is downloaded, so no ``raw``
    folder is made.
    """
    @property
    def has_download(self) -> bool:
        return False

    def _process(self):
        if not self.force_reload and all(
                osp.exists(p) for p in self.processed_paths):
            return
        os.makedirs(self.processed_dir, exist_ok=True)
        self.process()

    def load(self, path: str, data_cls=Data) -> None:
        out = safe_load(path, 'processed dataset cache')
        if not isinstance(out, tuple) or len(out) not in (2, 3) or \
                not isinstance(out[1], dict):
            raise CorruptFileError(
                f'{path} is not a processed dataset of pyg_schnet; delete '
                f'it to have it made again')
        data, self.slices = out[0], out[1]
        if len(out) == 3:
            data_cls = out[2]
        if not isinstance(data_cls, type) or not issubclass(data_cls, Data):
            raise CorruptFileError(f'{path} holds an unexpected data class '
                                   f'{data_cls!r}')
        self.data = data_cls.from_dict(data) if isinstance(data, dict) \
            else data
