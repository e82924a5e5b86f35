"""Datasets from any file ASE can read (extxyz, traj, ASE db, ...)."""
import hashlib
import os
import os.path as osp
from typing import Callable, List, Optional, Sequence, Union

import ase.io
from torch_geometric.data import Data

from pyg_schnet.data.ase import from_ase
from pyg_schnet.data.cache import (
    CachedInMemoryDataset,
    atomic_save_dataset,
    pre_processing_key,
)
from pyg_schnet.graph import check_geometry

PathOrPaths = Union[str, os.PathLike, Sequence[Union[str, os.PathLike]]]

_LABELS = ('energy', 'forces', 'stress', 'dipole', 'charge')


def read_atoms(path: Union[str, os.PathLike], index=':'):
    r"""The structures of a file ASE reads (:obj:`index` as in
    :func:`ase.io.read`: a list for slices, one :class:`~ase.Atoms` for an
    integer), with errors naming the file.

    Raises:
        FileNotFoundError: if there is no such file.
        ValueError: if ASE cannot read it, or it holds no structure.
    """
    if not osp.exists(path):
        raise FileNotFoundError(f'no such structure file: {path}')
    try:
        images = ase.io.read(path, index=index)
    except Exception as e:  # ASE raises many types for bad files
        raise ValueError(f'ASE cannot read {path}: {e}') from e
    if isinstance(images, list) and not images:
        raise ValueError(f'{path} holds no structures')
    return images


def read_structures(paths: PathOrPaths, index: str = ':') -> List[Data]:
    r"""Reads every structure of one or more ASE-readable files into
    :class:`Data` objects with :func:`from_ase` (labels included).

    Every structure must carry the same labels: a frame without the
    :obj:`energy` (or :obj:`forces`, :obj:`stress`) that others have would
    either lose its labels silently or break batching, so it is reported
    by file and frame.

    Every structure is checked as it is read (:func:`from_ase`, and
    :func:`~pyg_schnet.graph.check_geometry`: unknown elements, non-finite
    positions, cells or labels, labels of the wrong shape, singular cells,
    overlapping atoms), so that a bad frame stops the work before it
    starts, named by file and frame.

    Raises:
        FileNotFoundError: if a file does not exist.
        ValueError: if ASE cannot read a file, a structure is invalid (file
            and frame named), or frames disagree on their labels.
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    out, where = [], []
    for path in paths:
        images = read_atoms(path, index)
        if not isinstance(images, list):
            images = [images]
        for k, atoms in enumerate(images):
            try:
                data = from_ase(atoms)
                check_geometry(data.z, data.pos, data.cell, data.pbc)
            except ValueError as e:
                raise ValueError(f'{path}, frame {k}: {e}') from None
            out.append(data)
            where.append(f'{path} frame {k}')
    check_labels(out, where)
    return out


def check_labels(data_list: Sequence[Data],
                 where: Optional[Sequence[str]] = None) -> None:
    r"""Raises a :class:`ValueError` naming the structures that lack a
    label (:obj:`energy`, :obj:`forces`, :obj:`stress`) which other
    structures of :obj:`data_list` carry."""
    present = {key: [k for k, d in enumerate(data_list) if key in d]
               for key in _LABELS}
    problems = []
    for key, have in present.items():
        if have and len(have) < len(data_list):
            missing = sorted(set(range(len(data_list))) - set(have))
            names = [where[k] if where else f'structure {k}'
                     for k in missing[:5]]
            more = f' and {len(missing) - 5} more' if len(missing) > 5 \
                else ''
            problems.append(f"'{key}' is missing in {len(missing)} of "
                            f"{len(data_list)} structures "
                            f"({', '.join(names)}{more})")
    if problems:
        raise ValueError('the structures do not all carry the same labels: '
                         + '; '.join(problems) + '. Label every structure, '
                         'or remove the unlabelled ones.')


class AtomsDataset(CachedInMemoryDataset):
    r"""An in-memory dataset of the structures in one or more files that
    :func:`ase.io.read` understands (extxyz, ASE trajectory, ASE database
    ``.db``, CIF, VASP, ...). Each structure becomes a :class:`Data` via
    :func:`~pyg_schnet.data.from_ase`, with :obj:`energy` (eV),
    :obj:`forces` (eV/Å) and :obj:`stress` (eV/Å³) when the file stores
    them.

    With a :obj:`root`, the processed dataset is cached there under a name
    derived from the files' paths, sizes and modification times and the
    pre-transform (an edited file or a new pre-transform is processed
    again) and written atomically; without one, the files are read on every
    construction.

    Args:
        paths (str or list of str): The structure file(s).
        root (str, optional): Cache folder. (default: :obj:`None`)
        index (str, optional): ASE index of the images to read.
            (default: :obj:`":"`, all)
        transform, pre_transform, pre_filter (callable, optional): As in
            :class:`~torch_geometric.data.InMemoryDataset`; for example
            :obj:`pre_transform=PeriodicRadiusGraph(5.0)` stores graphs.
    """
    def __init__(self, paths: PathOrPaths, root: Optional[str] = None,
                 index: str = ':', transform: Optional[Callable] = None,
                 pre_transform: Optional[Callable] = None,
                 pre_filter: Optional[Callable] = None):
        if isinstance(paths, (str, os.PathLike)):
            paths = [paths]
        self.paths = [osp.abspath(p) for p in paths]
        self.index = index
        self._cached = root is not None
        super().__init__(root, transform, pre_transform, pre_filter)
        if root is None:
            data_list = self._read()
            self.data, self.slices = self.collate(data_list)
        else:
            self.load(self.processed_paths[0])

    def _read(self) -> List[Data]:
        data_list = read_structures(self.paths, self.index)
        if self.pre_filter is not None:
            data_list = [d for d in data_list if self.pre_filter(d)]
        if self.pre_transform is not None:
            data_list = [self.pre_transform(d) for d in data_list]
        return data_list

    @property
    def has_process(self) -> bool:
        return self._cached

    @property
    def raw_file_names(self) -> List[str]:
        return []

    @property
    def processed_dir(self) -> str:
        key = hashlib.sha1()
        for path in self.paths:
            if not osp.exists(path):
                raise FileNotFoundError(f'no such structure file: {path}')
            stat = os.stat(path)
            key.update(f'{path}|{stat.st_size}|{stat.st_mtime_ns}|'.encode())
        key.update(self.index.encode())
        return osp.join(self.root, 'processed', key.hexdigest()[:16],
                        pre_processing_key(self.pre_transform,
                                           self.pre_filter))

    @property
    def processed_file_names(self) -> List[str]:
        # v3: every structure checked (check_geometry) when processed.
        return ['atoms_v4.pt']

    def process(self):
        atomic_save_dataset(self._read(), self.processed_paths[0])
