"""Every exact fast path gives the reference path's numbers (float64,
1e-10): each pair computed once for both directions, filters recomputed in
the backward pass (the fused operator: tests/test_fused.py)."""
import pytest
import torch
from ase.build import bulk
from torch_geometric.data import Batch, Data

from pyg_schnet.data import from_ase
from pyg_schnet.graph import (
    PeriodicRadiusGraph,
    canonical_mask,
    half_pairs,
    radius_graph,
)
from pyg_schnet.models import edge_vectors
from pyg_schnet.nn import CFConv, DTNNInteraction, GaussianRBF

from conftest import G2_NAMES, g2_data, small_models


def _reference(model, data, stress=False):
    r"""Energy, forces (and stress) on the full edge list, as given."""
    data = PeriodicRadiusGraph(model.cutoff)(data.clone())
    pos = data.pos.clone().requires_grad_(True)
    batch = data.batch if data.get('batch') is not None else \
        torch.zeros(data.num_nodes, dtype=torch.long)
    num_graphs = int(batch.max()) + 1
    cell = data.cell if bool(data.pbc.any()) else None
    offsets = data.cell_offsets if cell is not None else None
    inputs = [pos]
    strained_pos, strained_cell = pos, cell
    if stress:
        strain = torch.zeros((num_graphs, 3, 3), dtype=pos.dtype,
                             requires_grad=True)
        inputs.append(strain)
        sym = 0.5 * (strain + strain.transpose(1, 2))
        strained_pos = pos + torch.einsum('ni,nij->nj', pos, sym[batch])
        strained_cell = cell + torch.bmm(cell, sym)
    energy = model.energy(data.z, strained_pos, data.edge_index, batch,
                          num_graphs, strained_cell, offsets,
                          symmetric=False)
    grads = torch.autograd.grad(energy.sum(), inputs)
    out = [energy.detach(), -grads[0]]
    if stress:
        volume = torch.linalg.det(cell).abs().view(-1, 1, 1)
        out.append(grads[1] / volume)
    return out


@pytest.mark.parametrize('name', ['schnet', 'dtnn'])
def test_pair_path_equals_full_path_on_molecules(name):
    model = small_models()[name]
    batch = Batch.from_data_list([from_ase(_g2(n), torch.float64)
                                  for n in G2_NAMES])
    energy, forces = model(batch, forces=True)
    ref_energy, ref_forces = _reference(model, batch)
    torch.testing.assert_close(energy, ref_energy, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(forces, ref_forces, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize('name', ['schnet', 'dtnn'])
def test_pair_path_equals_full_path_on_crystals(name):
    model = small_models()[name]
    crystals = []
    for k, (symbol, a) in enumerate((('Cu', 3.6), ('Al', 4.05))):
        atoms = bulk(symbol, 'fcc', a=a) * (2, 1, 1)  # small: self images
        atoms.rattle(0.05, seed=k)
        crystals.append(from_ase(atoms, torch.float64))
    batch = Batch.from_data_list(crystals)
    energy, forces, stress = model(batch, forces=True, stress=True)
    ref = _reference(model, batch, stress=True)
    for got, want in zip((energy, forces, stress), ref, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-10)


def _g2(name):
    from ase.build import molecule
    return molecule(name)


def test_half_pairs_selects_one_edge_per_pair():
    data = PeriodicRadiusGraph(3.0)(from_ase(bulk('Cu', 'fcc', a=3.6),
                                             torch.float64))
    half = half_pairs(data.edge_index, data.cell_offsets)
    assert half is not None and 2 * half.numel() == data.edge_index.size(1)
    assert bool(canonical_mask(data.edge_index, data.cell_offsets)[half]
                .all())
    # Directed lists (a reverse missing) are used as given.
    edge_index = radius_graph(g2_data('C6H6').pos, 3.0)
    assert half_pairs(edge_index[:, 1:]) is None
    swapped = edge_index.clone()
    swapped[0, 0] = (swapped[0, 0] + 1) % 12
    assert half_pairs(swapped) is None


def test_directed_graph_falls_back_to_the_full_list():
    model = small_models()['schnet']
    data = g2_data('CH3CH2OH')
    edge_index = radius_graph(data.pos, model.cutoff)
    directed = edge_index[:, edge_index[0] != 0]  # atom 0 sends nothing
    energy = model(Data(z=data.z, pos=data.pos, edge_index=directed))
    ref = model.energy(data.z, data.pos, directed,
                       torch.zeros(data.num_nodes, dtype=torch.long), 1)
    torch.testing.assert_close(energy, ref, rtol=1e-12, atol=1e-12)
    assert not torch.allclose(energy, model(data))


@pytest.mark.parametrize('layer', [
    CFConv(6, num_gaussians=10, cutoff=3.0),
    CFConv(6, num_gaussians=10, cutoff=3.0, filter_activations=2),
    DTNNInteraction(6, 7, 10, cutoff=3.0, init='glorot'),
    DTNNInteraction(6, 7, 10, cutoff=None, init='glorot'),
])
def test_layers_symmetric_equals_full(layer):
    torch.manual_seed(0)
    layer = layer.double()
    pos = torch.rand(9, 3, dtype=torch.float64) * 4
    edge_index = radius_graph(pos, 3.0)
    half = half_pairs(edge_index)
    x = torch.randn(9, 6, dtype=torch.float64)
    d = edge_vectors(pos, edge_index, torch.zeros(9, dtype=torch.long)) \
        .norm(dim=-1)
    rbf = GaussianRBF(0.0, 3.0, 10).double()
    full = layer(x, edge_index, d, rbf(d))
    pairs = layer(x, edge_index[:, half], d[half], rbf(d[half]),
                  symmetric=True)
    torch.testing.assert_close(pairs, full, rtol=1e-10, atol=1e-12)


def test_filter_equals_the_filter_network_times_the_cutoff():
    torch.manual_seed(1)
    conv = CFConv(8, num_gaussians=12, cutoff=4.0).double()
    e = torch.rand(20, 12, dtype=torch.float64)
    d = torch.rand(20, dtype=torch.float64) * 3
    expected = conv.filter_network(e) * conv.cutoff_fn(d).unsqueeze(-1)
    torch.testing.assert_close(conv.filter(d, e), expected, rtol=1e-12,
                               atol=1e-14)


def test_recomputed_filters_give_the_same_forces(monkeypatch):
    import pyg_schnet.nn.cfconv as cfconv
    model = small_models()['schnet'].set_fused(False)  # reference path
    batch = Batch.from_data_list([g2_data(n) for n in G2_NAMES])
    energy, forces = model(batch, forces=True)
    monkeypatch.setattr(cfconv, '_RECOMPUTE_ELEMENTS', 0)
    calls = []
    original = cfconv.CFConv._recomputed_filter
    monkeypatch.setattr(cfconv.CFConv, '_recomputed_filter',
                        lambda self, *a: calls.append(1) or
                        original(self, *a))
    energy2, forces2 = model(batch, forces=True)
    assert calls, 'the recomputing path was not taken'
    torch.testing.assert_close(energy2, energy, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(forces2, forces, rtol=1e-12, atol=1e-12)


def test_pair_messages_gradients_to_second_order():
    from pyg_schnet.nn import pair_messages
    torch.manual_seed(0)
    x = torch.randn(6, 4, dtype=torch.float64, requires_grad=True)
    W = torch.randn(7, 4, dtype=torch.float64, requires_grad=True)
    edge_index = torch.tensor([[0, 1, 2, 3, 4, 5, 0], [1, 2, 3, 4, 5, 0, 3]])
    assert torch.autograd.gradcheck(
        lambda x, W: pair_messages(x, W, edge_index), (x, W))
    assert torch.autograd.gradgradcheck(
        lambda x, W: pair_messages(x, W, edge_index), (x, W))
