"""Datasets for training: loading by name, statistics for the readout's
standardisation, and fitted reference energies."""
import os.path as osp
from dataclasses import dataclass
from typing import Optional, Tuple

import torch
from torch import Tensor
from torch_geometric.data import Dataset, InMemoryDataset

from pyg_schnet.data import QM9, QM9_TARGETS, AtomsDataset, qm9_atomref
from pyg_schnet.graph import MAX_Z


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
    if target not in first:
        raise ValueError(f"the structures in {name} have no '{target}' "
                         f'label (found: {sorted(first.keys())})')
    has_forces = target == 'energy' and 'forces' in first
    unit = 'eV' if target == 'energy' else '(file units)'
    return dataset, TargetInfo(target, unit, 'sum', has_forces, None)


def _graph_table(dataset: Dataset, target: str
                 ) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
    r"""Per-graph target values :obj:`[M]` (float64), atom counts
    :obj:`[M]`, and, for every atom, its element and graph :obj:`[N]`, of
    the graphs of :obj:`dataset` (read from the collated storage of an
    in-memory dataset, without building :class:`Data` objects)."""
    if isinstance(dataset, InMemoryDataset) and dataset.slices is not None:
        storage, slices = dataset._data, dataset.slices
        idx = torch.as_tensor(dataset.indices(), dtype=torch.long)
        values = storage[target].view(-1).to(torch.float64)[idx]
        ptr = slices['z']
        counts = (ptr[1:] - ptr[:-1])[idx]
        starts = ptr[:-1][idx]
        graph = torch.repeat_interleave(torch.arange(idx.numel()), counts)
        offset = torch.arange(int(counts.sum())) - \
            torch.repeat_interleave(torch.cumsum(counts, 0) - counts, counts)
        z = storage.z[starts[graph] + offset]
        return values, counts, z, graph
    values, counts, zs, graphs = [], [], [], []
    for k, data in enumerate(dataset):
        values.append(float(data[target].view(-1)[0]))
        counts.append(data.num_nodes)
        zs.append(data.z)
        graphs.append(torch.full((data.num_nodes, ), k))
    return (torch.tensor(values, dtype=torch.float64), torch.tensor(counts),
            torch.cat(zs), torch.cat(graphs))


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
    if readout == 'sum':
        if atomref is not None:
            reference = torch.zeros_like(values).index_add_(
                0, graph, atomref[z])
            values = values - reference
        values = values / counts
    std = float(values.std()) if values.numel() > 1 else 1.0
    return float(values.mean()), std if std > 0 else 1.0
