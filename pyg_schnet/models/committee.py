r"""A committee of models: the mean energy and forces of :math:`K` trained
models and their spread, the uncertainty estimate of SchNetPack,
TorchMD-Net and MACE committees."""
from typing import Dict, List, Optional, Sequence

import torch
from torch import Tensor

from pyg_schnet.models.potential import AtomisticModel


class Committee(torch.nn.Module):
    r"""The committee of :obj:`models` :math:`\{E^{(k)}\}_{k=1}^K` (the same
    targets and units, any architectures):

    .. math::
        \bar E = \frac1K \sum_k E^{(k)}, \qquad
        \bar{\mathbf{F}}_i = \frac1K \sum_k \mathbf{F}^{(k)}_i, \qquad
        \sigma_E = \Big(\frac1K \sum_k (E^{(k)} - \bar E)^2\Big)^{1/2},
        \qquad
        \sigma_{F,i} = \Big(\frac1K \sum_k |\mathbf{F}^{(k)}_i -
        \bar{\mathbf{F}}_i|^2\Big)^{1/2},

    (population standard deviations: zero for :math:`K` equal models,
    :math:`|E^{(1)} - E^{(2)}|/2` for two). The committee has the
    :meth:`~pyg_schnet.models.AtomisticModel.evaluate` interface, so the ASE
    calculator and the MD engine run it like a single model; its
    :obj:`evaluate` adds :obj:`energy_std` :obj:`[B]` (eV) and
    :obj:`forces_std` :obj:`[N]` (eV/Å). All :math:`K` models compute on
    one graph, built at the largest cutoff (each model masks the pairs
    beyond its own cutoff), one model after the other.

    Args:
        models (sequence of AtomisticModel): At least two models.

    Shapes:
        - **input:** as :meth:`AtomisticModel.evaluate`
        - **output:** a dict with :obj:`energy` :math:`(B)`, :obj:`forces`
          :math:`(N, 3)`, :obj:`energy_std` :math:`(B)`, :obj:`forces_std`
          :math:`(N)`, and :obj:`energies` :math:`(N)` (mean per-atom
          energies) when asked
    """
    def __init__(self, models: Sequence[AtomisticModel]):
        super().__init__()
        models = list(models)
        if len(models) < 2:
            raise ValueError(f'a committee needs at least two models (got '
                             f'{len(models)})')
        for k, model in enumerate(models):
            if not hasattr(model, 'evaluate') or not hasattr(model,
                                                             'cutoff'):
                raise ValueError(f'committee member {k} is not a model '
                                 f'(got {type(model).__name__})')
        self.members = torch.nn.ModuleList(models)
        self.cutoff = max(float(m.cutoff) for m in models)
        self.max_z = min(int(getattr(m, 'max_z', 100)) for m in models)
        self.min_distance = max(float(getattr(m, 'min_distance', 0.0))
                                for m in models)
        elements = [m.trained_elements for m in models
                    if getattr(m, 'trained_elements', None) is not None]
        self.trained_elements: Optional[List[int]] = sorted(
            set.intersection(*map(set, elements))) if elements else None

    @property
    def use_atomref(self) -> bool:
        return all(getattr(m, 'use_atomref', False) for m in self.members)

    def memory_widths(self):
        r"""The sizes of the largest member
        (:func:`~pyg_schnet.models.memory.memory_estimate`: members run one
        after the other)."""
        widths = [m.memory_widths() for m in self.members
                  if hasattr(m, 'memory_widths')]
        if not widths:
            raise AttributeError('memory_widths')
        return max(widths, key=lambda w: w[0] + sum(w[1]) + w[2])

    def evaluate(self, z: Tensor, pos: Tensor, edge_index: Tensor,
                 batch: Tensor, num_graphs: int,
                 cell: Optional[Tensor] = None,
                 cell_offsets: Optional[Tensor] = None,
                 symmetric: bool = False, forces: bool = True,
                 stress: bool = False,
                 energies: bool = False) -> Dict[str, Tensor]:
        r"""The members' :meth:`~AtomisticModel.evaluate` on one graph,
        averaged, with :obj:`energy_std` and (with :obj:`forces`)
        :obj:`forces_std`."""
        outs = [m.evaluate(z, pos, edge_index, batch, num_graphs, cell,
                           cell_offsets, symmetric, forces=forces,
                           stress=stress, energies=energies)
                for m in self.members]
        result: Dict[str, Tensor] = {}
        for key in outs[0]:
            stacked = torch.stack([o[key].to(outs[0][key].dtype)
                                   for o in outs])
            result[key] = stacked.mean(dim=0)
            if key == 'energy':
                result['energy_std'] = (stacked - result[key]).pow(2) \
                    .mean(dim=0).sqrt()
            elif key == 'forces':
                result['forces_std'] = (stacked - result[key]).pow(2) \
                    .sum(dim=-1).mean(dim=0).sqrt()
        return result

    def forward(self, data, forces: bool = False, stress: bool = False):
        r"""The members' mean energy (and forces, stress) of :obj:`data`
        (each member checks the input as :meth:`AtomisticModel.forward`
        does)."""
        outs = [m(data, forces=forces, stress=stress) for m in self.members]
        if not isinstance(outs[0], tuple):
            return torch.stack(outs).mean(dim=0)
        return tuple(torch.stack([o[k] for o in outs]).mean(dim=0)
                     for k in range(len(outs[0])))

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}({len(self.members)} models)'
