"""Targets trained by a model's property heads (dipole, polarizability,
spatial extent): how a head's output is compared with a data set's label,
their units, and the heads' standardisation from the training set."""
from dataclasses import dataclass
from typing import Dict, List, Sequence, Tuple

import torch
from ase.units import Bohr, Debye
from torch import Tensor
from torch_geometric.data import Dataset
from torch_geometric.loader import DataLoader

from pyg_schnet.nn.properties import centre_of_mass


@dataclass(frozen=True)
class PropertyTarget:
    r"""A label a property head is trained on."""
    head: str  #: the model's head (:data:`~pyg_schnet.nn.PROPERTY_HEADS`)
    #: how the head's output meets the label: 'norm' (the dipole's length
    #: against a number), 'vector', 'isotropic' (trace / 3), 'eigenvalues'
    #: (sorted: the label's frame need not be the geometry's) or 'scalar'
    compare: str
    unit: str  #: of the label and the head (the package's units)
    #: the unit errors are also printed in, and the factor from :attr:`unit`
    display: Tuple[str, float]
    description: str


#: Data fields that heads can be trained on. QM9 has :obj:`mu`,
#: :obj:`alpha`, :obj:`polarizability` and :obj:`r2`; structure files
#: (extxyz, ASE db) can carry :obj:`dipole` vectors.
PROPERTY_TARGETS: Dict[str, PropertyTarget] = {
    'mu': PropertyTarget('dipole', 'norm', 'e·Å', ('D', 1 / Debye),
                         'dipole moment |μ|'),
    'dipole': PropertyTarget('dipole', 'vector', 'e·Å', ('D', 1 / Debye),
                             'dipole vector μ'),
    'alpha': PropertyTarget('polarizability', 'isotropic', 'Å^3',
                            ('bohr^3', Bohr**-3),
                            'isotropic polarizability tr α / 3'),
    'polarizability': PropertyTarget('polarizability', 'eigenvalues', 'Å^3',
                                     ('bohr^3', Bohr**-3),
                                     'polarizability tensor (eigenvalues)'),
    'r2': PropertyTarget('spatial_extent', 'scalar', 'Å^2',
                         ('bohr^2', Bohr**-2),
                         'electronic spatial extent ⟨R²⟩'),
}


def check_properties(names: Sequence[str]) -> List[str]:
    r"""The property targets :obj:`names`, checked; raises a
    :class:`ValueError` naming an unknown one or a head asked for
    twice."""
    names = list(names)
    unknown = sorted(set(names) - set(PROPERTY_TARGETS))
    if unknown:
        raise ValueError(f'unknown properties {unknown}: heads can be '
                         f'trained on {sorted(PROPERTY_TARGETS)}')
    heads = [PROPERTY_TARGETS[n].head for n in names]
    for head in set(heads):
        if heads.count(head) > 1:
            both = [n for n in names if PROPERTY_TARGETS[n].head == head]
            raise ValueError(f'{both} are all trained by the {head} head: '
                             f'choose one of them')
    return names


def compared(name: str, out: Dict[str, Tensor],
             label: Tensor) -> Tuple[Tensor, Tensor]:
    r"""The head's prediction and the label of target :obj:`name` as two
    tensors of one shape :obj:`[B, k]`, in the target's unit."""
    target = PROPERTY_TARGETS[name]
    value = out[target.head]
    num_graphs = value.size(0)
    label = label.to(value.dtype)
    if target.compare == 'norm':
        return value.norm(dim=-1, keepdim=True), label.view(num_graphs, 1)
    if target.compare == 'vector':
        return value, label.view(num_graphs, 3)
    if target.compare == 'isotropic':
        trace = value.diagonal(dim1=-2, dim2=-1).sum(-1, keepdim=True) / 3
        return trace, label.view(num_graphs, 1)
    if target.compare == 'eigenvalues':
        return (torch.linalg.eigvalsh(value),
                torch.linalg.eigvalsh(label.view(num_graphs, 3, 3)))
    return value.view(num_graphs, 1), label.view(num_graphs, 1)


def label_scale(dataset: Dataset, name: str) -> float:
    r"""The root mean square of target :obj:`name`'s label over
    :obj:`dataset` (in its unit): the loss divides squared errors by its
    square, so that a weight of 1 means the same for every property."""
    values = torch.cat([d[name].double().flatten() for d in dataset])
    return max(float(values.pow(2).mean().sqrt()), 1e-12)


@torch.no_grad()
def set_head_statistics(model: torch.nn.Module, dataset: Dataset,
                        names: Sequence[str]) -> None:
    r"""Sets the per-atom shift and scale of each property head from the
    labels of the training set, so that training starts at the right
    magnitude: latent charges of a size that gives the mean :math:`|μ|`,
    atomic polarizabilities of the mean :math:`\alpha / N`, weights of the
    mean :math:`\langle R^2\rangle / \sum_i |\tilde{\mathbf{r}}_i|^2`."""
    loader = DataLoader(dataset, batch_size=256)
    sums: Dict[str, List[Tensor]] = {n: [] for n in names}
    spread, atoms = [], []
    for batch in loader:
        pos = batch.pos.double()
        r = pos - centre_of_mass(pos, batch.z, batch.batch,
                                 batch.num_graphs)[batch.batch]
        r2 = torch.zeros(batch.num_graphs, dtype=torch.float64).index_add_(
            0, batch.batch, r.pow(2).sum(-1))
        spread.append(r2)
        atoms.append(torch.bincount(batch.batch,
                                    minlength=batch.num_graphs).double())
        for n in names:
            sums[n].append(batch[n].double().view(batch.num_graphs, -1))
    spread_t, atoms_t = torch.cat(spread), torch.cat(atoms)
    for name in names:
        target = PROPERTY_TARGETS[name]
        head = model.heads[target.head]
        label = torch.cat(sums[name])
        if target.head == 'dipole':
            size = label.norm(dim=-1) if label.size(1) == 3 else label[:, 0]
            std = float(size.pow(2).mean().sqrt() /
                        spread_t.mean().sqrt().clamp_min(1e-6))
            head.net.std.fill_(max(std, 1e-3))
        elif target.head == 'polarizability':
            iso = label[:, 0] if label.size(1) == 1 else \
                label.view(-1, 3, 3).diagonal(dim1=-2, dim2=-1).mean(-1)
            per_atom = iso / atoms_t
            scale = max(float(per_atom.std()), 1e-3 * float(
                per_atom.abs().mean()), 1e-6)
            head.net.mean.copy_(torch.tensor([float(per_atom.mean()),
                                                0.0]))
            head.net.std.copy_(torch.tensor([
                scale, scale / max(float((spread_t / atoms_t).mean()),
                                   1e-6)]))
        else:
            weight = label[:, 0] / spread_t.clamp_min(1e-6)
            head.net.mean.fill_(float(weight.mean()))
            head.net.std.fill_(max(float(weight.std()), 1e-6))


def check_property_labels(dataset: Dataset, names: Sequence[str],
                          where: str) -> None:
    r"""Raises a :class:`ValueError` if a structure of :obj:`dataset` lacks
    the label of a property in :obj:`names`, or it has the wrong size or
    is not finite, naming the item and :obj:`where` (the data set)."""
    if not names or not len(dataset):
        return
    first = dataset[0]
    sizes = {'norm': 1, 'isotropic': 1, 'scalar': 1, 'vector': 3,
             'eigenvalues': 9}
    for name in names:
        if name not in first:
            have = sorted(k for k in first.keys() if k in PROPERTY_TARGETS)
            raise ValueError(f"{where} has no '{name}' label for the "
                             f"{PROPERTY_TARGETS[name].head} head (property "
                             f"labels it has: {', '.join(have) or 'none'})")
    for k in range(len(dataset)):
        data = dataset[k]
        for name in names:
            value = data[name]
            size = sizes[PROPERTY_TARGETS[name].compare]
            if value.numel() != size:
                raise ValueError(f"{where}, item {k}: '{name}' has "
                                 f'{value.numel()} values, {size} expected')
            if not bool(torch.isfinite(value).all()):
                raise ValueError(f"{where}, item {k}: '{name}' is not "
                                 f'finite (NaN or inf)')


def evaluable_properties(model: torch.nn.Module, data) -> List[str]:
    r"""Every property target a model's heads can be compared on with the
    labels :obj:`data` (one structure) carries: the trained ones and
    their relatives (a polarizability head trained on tensors also gives
    the isotropic :obj:`alpha`; a dipole head trained on vectors also
    :obj:`mu`)."""
    heads = set(model.property_heads()) \
        if hasattr(model, 'property_heads') else set()
    return [name for name, target in PROPERTY_TARGETS.items()
            if target.head in heads and name in data]
