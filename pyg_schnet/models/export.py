"""Deployment: energies and forces without the Python package.

Two routes, both tested to give the model's numbers:

* :func:`script` — a TorchScript module computing energy *and* forces
  (autograd inside), saved with :meth:`torch.jit.ScriptModule.save` and
  loaded from C++ with ``torch::jit::load("model.pt")`` (LibTorch), from
  Python with :func:`torch.jit.load`, without pyg_schnet installed.
* :func:`export_energy` — a :func:`torch.export` program of the energy with
  dynamic numbers of atoms and pairs, saved with :func:`torch.export.save`.
  Forces come from autograd through ``program.module()`` in Python; for
  C++, ``torch._inductor.aoti_compile_and_package`` turns the program into
  an AOTInductor package that ``torch::inductor::AOTIModelPackageLoader``
  runs (energies). torch 2.13 cannot export a program that itself calls
  autograd (``torch.autograd.grad`` / ``torch.func.grad`` fail), so C++
  forces go through the TorchScript route.

Inputs of both: :obj:`z` :obj:`[N]` (long), :obj:`pos` :obj:`[N, 3]` (Å),
:obj:`edge_index` :obj:`[2, P]` with each unordered pair once
(:func:`~pyg_schnet.graph.half_pairs`), :obj:`batch` :obj:`[N]`,
:obj:`cell` :obj:`[B, 3, 3]` (Å; zeros for molecules) and
:obj:`cell_offsets` :obj:`[P, 3]` (zeros for molecules). Outputs: energy
:obj:`[B]` (eV) and, for :func:`script`, forces :obj:`[N, 3]` (eV/Å).
"""
import copy
from typing import Tuple

import torch
from torch import Tensor

from pyg_schnet.models.potential import AtomisticModel


class EnergyForces(torch.nn.Module):
    r"""The energy and forces of a trained model as one TorchScript-able
    module (see the module docstring for the inputs). It shares the model's
    layers and buffers."""
    def __init__(self, model: AtomisticModel, num_graphs_hint: int = 1):
        super().__init__()
        self.embedding = model.embedding
        self.rbf = model.rbf
        # One entry per pass (DTNN's shared block appears T times).
        self.blocks = torch.nn.ModuleList(model.interaction_blocks())
        self.readout = model.readout
        self.register_buffer('atomref', model.atomref.clone())
        self.use_atomref = bool(model.use_atomref)
        self.sum_readout = model.readout.aggr == 'sum'

    def energy(self, z: Tensor, pos: Tensor, edge_index: Tensor,
               batch: Tensor, cell: Tensor, cell_offsets: Tensor) -> Tensor:
        j, i = edge_index[0], edge_index[1]
        vec = pos.index_select(0, j) - pos.index_select(0, i) + torch.einsum(
            'ek,ekl->el', cell_offsets.to(pos.dtype),
            cell.index_select(0, batch.index_select(0, i)))
        d = torch.linalg.vector_norm(vec, dim=-1)
        x = self.embedding(z)
        e = self.rbf(d)
        for block in self.blocks:
            x = x + block(x, edge_index, d, e, True)
        y = self.readout.per_atom(x).squeeze(-1)
        if self.use_atomref:
            y = y.to(torch.float64) + self.atomref.index_select(0, z)
        out = torch.zeros(cell.size(0), dtype=y.dtype, device=y.device)
        out = out.index_add(0, batch, y)
        if not self.sum_readout:
            count = torch.zeros(cell.size(0), dtype=y.dtype,
                                device=y.device)
            count = count.index_add(0, batch, torch.ones_like(y))
            out = out / count.clamp(min=1)
        return out

    def forward(self, z: Tensor, pos: Tensor, edge_index: Tensor,
                batch: Tensor, cell: Tensor, cell_offsets: Tensor
                ) -> Tuple[Tensor, Tensor]:
        pos = pos.detach().requires_grad_(True)
        energy = self.energy(z, pos, edge_index, batch, cell, cell_offsets)
        grad = torch.autograd.grad([energy.sum()], [pos])[0]
        assert grad is not None
        return energy.detach(), -grad


class _Energy(torch.nn.Module):
    def __init__(self, model: AtomisticModel):
        super().__init__()
        self.inner = EnergyForces(model)

    def forward(self, z, pos, edge_index, batch, cell, cell_offsets):
        return self.inner.energy(z, pos, edge_index, batch, cell,
                                 cell_offsets)


def script(model: AtomisticModel) -> torch.jit.ScriptModule:
    r"""A TorchScript module of the model's energy and forces (see the
    module docstring); save it with :obj:`.save(path)`."""
    return torch.jit.script(EnergyForces(model.eval()))


def export_energy(model: AtomisticModel, z: Tensor, pos: Tensor,
                  edge_index: Tensor, batch: Tensor, cell: Tensor,
                  cell_offsets: Tensor, fused: bool = False
                  ) -> torch.export.ExportedProgram:
    r"""A :func:`torch.export` program of the energy, traced on the example
    inputs, with the numbers of atoms, pairs and graphs dynamic.

    With :obj:`fused=False` (the default) the program holds only torch's
    own operators and runs wherever torch does; :obj:`fused=True` keeps
    the fused CFConv operator (``torch.ops.pyg_schnet.cfconv``, faster),
    so the program needs ``import pyg_schnet`` where it is loaded.

    The example may be one structure (molecule or crystal): torch.export
    would fix a dimension of size 1 at 1, so a single structure is traced
    as a batch of two copies of itself; the program takes any number of
    structures (at least 2 atoms and 2 pairs in all)."""
    from torch.export import Dim

    if cell.size(0) == 1 or z.size(0) < 2 or edge_index.size(1) < 2:
        z, pos, edge_index, batch, cell, cell_offsets = _doubled(
            z, pos, edge_index, batch, cell, cell_offsets)

    atoms, pairs, graphs = Dim('atoms', min=2), Dim('pairs', min=2), \
        Dim('graphs', min=1)
    shapes = ({0: atoms}, {0: atoms}, {1: pairs}, {0: atoms}, {0: graphs},
              {0: pairs})
    # A copy, so that the caller's model keeps its own setting.
    model = copy.deepcopy(model).set_fused(fused).eval()
    return torch.export.export(
        _Energy(model), (z, pos, edge_index, batch, cell, cell_offsets),
        dynamic_shapes=shapes, strict=False)


def _doubled(z: Tensor, pos: Tensor, edge_index: Tensor, batch: Tensor,
             cell: Tensor, cell_offsets: Tensor):
    r"""The example batch followed by a copy of itself (more graphs, atoms
    and pairs than one, for tracing)."""
    return (torch.cat([z, z]), torch.cat([pos, pos]),
            torch.cat([edge_index, edge_index + z.size(0)], dim=1),
            torch.cat([batch, batch + cell.size(0)]), torch.cat([cell, cell]),
            torch.cat([cell_offsets, cell_offsets]))
