"""Datasets for training: loading by name, statistics for the readout's
standardisation, and fitted reference energies."""
import os
import os.path as osp
import warnings
from dataclasses import dataclass
from typing import List, Optional, Tuple

import torch
from torch import Tensor
from torch_geometric.data import Dataset, InMemoryDataset

from pyg_schnet.data import QM9, QM9_TARGETS, AtomsDataset, qm9_atomref
from pyg_schnet.graph import MAX_Z
from pyg_schnet.io import CorruptFileError, safe_load


@dataclass
class TargetInfo:
    r"""What the trainer needs to know about a target."""
    name: str
    unit: str
    readout: str  # 'sum' (extensive) or 'mean' (intensive)
    has_forces: bool
    atomref: Optional[Tensor]  # eV per element, or None


def load_dataset(name: str, root: str, target: Optional[str] = None,
                 max_molecules: Optional[int] = None
                 ) -> Tuple[Dataset, TargetInfo]:
    r"""Loads :obj:`"qm9"` (offline, from ``qm9pack``) or any file ASE can
    read, and describes the target.

    For QM9 the target defaults to :obj:`"U0"` with the QM9 paper's atom
    references (energies :obj:`U0`, :obj:`U`, :obj:`H`, :obj:`G`). For
    files it defaults to :obj:`"energy"` (eV), trained with forces when the
    file has them, with references fitted to the training set later
    (:func:`fit_atomref`).
    """
    if name.lower() == 'qm9':
        target = target or 'U0'
        if target not in QM9_TARGETS:
            raise ValueError(f"unknown QM9 target '{target}' (choose from "
                             f'{sorted(QM9_TARGETS)})')
        dataset = QM9(osp.join(root, 'qm9'), max_molecules=max_molecules)
        info = QM9_TARGETS[target]
        return dataset, TargetInfo(target, info.unit, info.readout, False,
                                   qm9_atomref(target))
    if not osp.isfile(name):
        raise FileNotFoundError(f"dataset '{name}' is neither 'qm9' nor an "
                                f'existing structure file')
    dataset = AtomsDataset(name, root=osp.join(root, 'files'))
    if max_molecules is not None:
        dataset = dataset[:max_molecules]
    target = target or 'energy'
    first = dataset[0]
    labels = sorted(k for k in first.keys() if k in ('energy', 'forces',
                                                     'stress'))
    if target not in first:
        raise ValueError(f"the structures in {name} have no '{target}' "
                         f"label (labels found: {', '.join(labels) or 'none'}"
                         f')')
    if not torch.is_tensor(first[target]) or first[target].numel() != 1:
        raise ValueError(f"'{target}' is not one number per structure and "
                         f'cannot be a training target (per-structure '
                         f"labels of {name}: "
                         f"{', '.join(k for k in labels if k == 'energy')})")
    has_forces = target == 'energy' and 'forces' in first
    unit = 'eV' if target == 'energy' else '(file units)'
    return dataset, TargetInfo(target, unit, 'sum', has_forces, None)


def check_targets(dataset: Dataset, target: str, forces: bool) -> None:
    r"""Raises a :class:`ValueError` naming the structures whose target
    (or forces) are NaN or infinite: they would make the loss NaN."""
    values, _, _, _ = _graph_table(dataset, target)
    bad = (~torch.isfinite(values)).nonzero().view(-1)
    if bad.numel():
        raise ValueError(f"{bad.numel()} structures have a non-finite "
                         f"'{target}' (NaN or inf), e.g. items "
                         f'{bad[:5].tolist()} of the dataset')
    if forces:
        for k in range(len(dataset)):
            if not bool(torch.isfinite(dataset[k].forces).all()):
                raise ValueError(f'structure {k} has non-finite forces '
                                 f'(NaN or inf)')


def resolve_split_sizes(num_items: int, sizes, defaults) -> Tuple[int, ...]:
    r"""Counts :obj:`(n_train, n_val, n_test)` from the configured sizes:
    counts, fractions of :obj:`num_items`, :obj:`None` for the dataset's
    default, or :obj:`"rest"` (test only: every structure not in training
    or validation).

    Raises:
        ValueError: if the sizes do not fit the dataset, saying which
            options to change.
    """
    counts = []
    for size, default in zip(sizes, defaults, strict=True):
        size = default if size is None else size
        if isinstance(size, float):
            size = max(1, int(round(size * num_items)))
        counts.append(size)
    if counts[2] == 'rest':
        counts[2] = num_items - counts[0] - counts[1]
    n_train, n_val, n_test = counts
    if n_test < 0 or n_train + n_val + n_test > num_items:
        raise ValueError(
            f'the split asks for {n_train} + {n_val} + {max(n_test, 0)} '
            f'structures but the dataset has {num_items}: lower --n-train, '
            f'--n-val or --n-test (counts, or fractions such as 0.8), e.g. '
            f'--n-train 0.8 --n-val 0.1 --n-test rest')
    if n_test == 0:
        raise ValueError(f'no structures are left for the test set '
                         f'({n_train} + {n_val} of {num_items} are used): '
                         f'lower --n-train or --n-val')
    return n_train, n_val, n_test


def dataset_fingerprint(dataset: Dataset, target: str) -> str:
    r"""A SHA-256 of the elements, positions and target values of every
    structure: a resumed or evaluated run checks that it sees the data it
    was trained on, even if the file was moved or replaced."""
    import hashlib

    values, counts, z, _ = _graph_table(dataset, target)
    digest = hashlib.sha256()
    digest.update(counts.numpy().tobytes())
    digest.update(z.numpy().tobytes())
    digest.update(values.numpy().tobytes())
    rows = _atom_rows(dataset)
    pos = dataset._data.pos[rows[3]] if rows is not None else \
        torch.cat([d.pos for d in dataset])
    digest.update(pos.double().numpy().tobytes())
    return digest.hexdigest()


def _atom_rows(dataset: Dataset
               ) -> Optional[Tuple[Tensor, Tensor, Tensor, Tensor]]:
    r"""For an in-memory dataset (or a subset of one): the storage index
    of each graph, its atom count, and for every atom its graph and its row
    in the collated storage; :obj:`None` for other datasets."""
    if not (isinstance(dataset, InMemoryDataset) and
            dataset.slices is not None):
        return None
    idx = torch.as_tensor(dataset.indices(), dtype=torch.long)
    ptr = dataset.slices['z']
    counts = (ptr[1:] - ptr[:-1])[idx]
    starts = ptr[:-1][idx]
    graph = torch.repeat_interleave(torch.arange(idx.numel()), counts)
    offset = torch.arange(int(counts.sum())) - \
        torch.repeat_interleave(torch.cumsum(counts, 0) - counts, counts)
    return idx, counts, graph, starts[graph] + offset


def _graph_table(dataset: Dataset, target: str
                 ) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
    r"""Per-graph target values :obj:`[M]` (float64), atom counts
    :obj:`[M]`, and, for every atom, its element and graph :obj:`[N]`, of
    the graphs of :obj:`dataset` (read from the collated storage of an
    in-memory dataset, without building :class:`Data` objects)."""
    rows = _atom_rows(dataset)
    if rows is not None:
        idx, counts, graph, atoms = rows
        storage = dataset._data
        values = storage[target].view(-1).to(torch.float64)[idx]
        return values, counts, storage.z[atoms], graph
    values, counts, zs, graphs = [], [], [], []
    for k, data in enumerate(dataset):
        values.append(float(data[target].view(-1)[0]))
        counts.append(data.num_nodes)
        zs.append(data.z)
        graphs.append(torch.full((data.num_nodes, ), k))
    return (torch.tensor(values, dtype=torch.float64), torch.tensor(counts),
            torch.cat(zs), torch.cat(graphs))


def dataset_elements(dataset: Dataset, target: str) -> List[int]:
    r"""The atomic numbers present in :obj:`dataset`, sorted."""
    return sorted(set(torch.unique(_graph_table(dataset, target)[2])
                      .tolist()))


def fit_atomref(dataset: Dataset, target: str = 'energy',
                max_z: int = MAX_Z) -> Tensor:
    r"""Per-element reference energies (float64 :obj:`[max_z + 1]`, eV)
    fitted by least squares, :math:`E_b \approx \sum_Z n_{bZ} E_Z`, to the
    graphs of :obj:`dataset` (use the training split only). Elements absent
    from the data get 0."""
    values, _, z, graph = _graph_table(dataset, target)
    present = torch.unique(z)
    column = torch.full((max_z + 1, ), -1, dtype=torch.long)
    column[present] = torch.arange(present.numel())
    counts = torch.zeros(values.numel(), present.numel(), dtype=torch.float64)
    counts.index_put_((graph, column[z]), torch.ones(z.numel(),
                                                     dtype=torch.float64),
                      accumulate=True)
    solution = torch.linalg.lstsq(counts, values.unsqueeze(-1),
                                  driver='gelsd').solution.view(-1)
    atomref = torch.zeros(max_z + 1, dtype=torch.float64)
    atomref[present] = solution
    return atomref


def target_statistics(dataset: Dataset, target: str, readout: str,
                      atomref: Optional[Tensor] = None
                      ) -> Tuple[float, float]:
    r"""Mean and standard deviation for the readout's standardisation
    :math:`y_i = \sigma o_i + \mu`: for a sum readout, of the per-atom
    values :math:`(Y_b - \sum_{i \in b} E^{\mathrm{ref}}_{Z_i}) / n_b`; for
    a mean readout, of :math:`Y_b` itself. In the target's unit."""
    values, counts, z, graph = _graph_table(dataset, target)
    raw = values / counts if readout == 'sum' else values
    if readout == 'sum':
        if atomref is not None:
            reference = torch.zeros_like(values).index_add_(
                0, graph, atomref[z])
            values = values - reference
        values = values / counts
    mean = float(values.mean())
    std = float(values.std()) if values.numel() > 1 else 0.0
    # The network's output is multiplied by std: a vanishing std (two
    # structures, or references fitted exactly to a tiny training set)
    # would silence the network and training would learn nothing.
    scale = max(float(raw.abs().mean()), 1e-12)
    floor = 1e-6 * scale
    if not std >= floor:
        fallback = float(raw.std()) if raw.numel() > 1 else 0.0
        fallback = fallback if fallback >= floor else max(scale, 1.0)
        warnings.warn(
            f'the spread of {target} over the {values.numel()} training '
            f'structures is {std:.3g} (after reference energies): too '
            f'small to scale the network by; using {fallback:.3g} instead. '
            f'More training structures give a meaningful scale.',
            stacklevel=2)
        std = fallback
    return mean, std


def load_split(path: os.PathLike, num_items: int
               ) -> Tuple[Tensor, Tensor, Tensor]:
    r"""The :obj:`(train, val, test)` index tensors of a :obj:`split.pt`
    file (a dict of three 1-D integer tensors), checked against a dataset
    of :obj:`num_items` structures: indices in range, no structure in two
    sets, none repeated.

    Raises:
        FileNotFoundError: if there is no such file.
        ValueError: if it is not such a split, or does not fit the dataset.
    """
    blob = read_split(path)
    sets = []
    for name in ('train', 'val', 'test'):
        idx = blob[name]
        if idx.numel() and (int(idx.min()) < 0 or
                            int(idx.max()) >= num_items):
            raise ValueError(f"{path}: '{name}' holds indices outside "
                             f'0..{num_items - 1} (the dataset has '
                             f'{num_items} structures)')
        sets.append(idx)
    everything = torch.cat(sets)
    if torch.unique(everything).numel() != everything.numel():
        raise ValueError(f'{path}: a structure appears twice (in two sets '
                         f'or twice in one)')
    return sets[0], sets[1], sets[2]


def read_split(path: os.PathLike) -> dict:
    r"""A split file as a dict: :obj:`train`, :obj:`val`, :obj:`test`
    (long tensors) and, for splits written by a run, the
    :obj:`fingerprint` of the dataset (:func:`dataset_fingerprint`)."""
    blob = safe_load(path, 'split file')
    if not isinstance(blob, dict) or not {'train', 'val', 'test'} <= set(blob):
        raise CorruptFileError(f'{path} is not a split file (a dict with '
                               f'train, val and test index tensors)')
    for name in ('train', 'val', 'test'):
        idx = blob[name]
        if not isinstance(idx, Tensor) or idx.dim() != 1 or \
                idx.is_floating_point() or idx.dtype == torch.bool:
            raise CorruptFileError(f"{path}: '{name}' must be a 1-D integer "
                                   f'tensor')
        blob[name] = idx.long()
    return blob
