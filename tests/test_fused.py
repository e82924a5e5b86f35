"""The fused CFConv operator gives the reference path's numbers (float64,
1e-10): energies, forces, stress and weight gradients on molecules,
batches and periodic crystals, with one and two threads; torch.compile and
torch.export see it; Hessians go through it; float32 energies of a large
crystal stay within 1e-5 eV/atom of float64."""
import pytest
import torch
from ase.build import bulk
from torch_geometric.data import Batch

from pyg_schnet.data import from_ase
from pyg_schnet.graph import PeriodicRadiusGraph, half_pairs
from pyg_schnet.models import SchNet
from pyg_schnet.models.export import export_energy
from pyg_schnet.nn import CFConv, GaussianRBF
from pyg_schnet.nn.fused import (
    fused_available,
    fused_cfconv,
    fused_unavailable_reason,
)

from conftest import G2_NAMES, g2_data

pytestmark = pytest.mark.skipif(
    not fused_available(),
    reason=f'the fused operator is not built: {fused_unavailable_reason()}')

_VARIANTS = [dict(), dict(filter_activations=2),
             dict(envelope='none', ssp_threshold=14.0, filter_activations=2)]


def _model(**kwargs):
    torch.manual_seed(0)
    return SchNet(hidden_channels=24, num_filters=32, num_interactions=3,
                  num_gaussians=20, cutoff=4.0, mean=-0.3, std=2.0,
                  **kwargs).double().eval()


def _molecules():
    return Batch.from_data_list([g2_data(n) for n in G2_NAMES])


def _crystals():
    cu = bulk('Cu', 'fcc', a=3.6, cubic=True).repeat((2, 2, 2))
    nacl = bulk('NaCl', 'rocksalt', a=5.6)
    nacl.rattle(0.05, seed=1)
    cu.rattle(0.05, seed=2)
    return Batch.from_data_list([from_ase(a, torch.float64)
                                 for a in (cu, nacl)])


def _both_paths(model, data, **kwargs):
    fused = model.set_fused(True)(data, **kwargs)
    reference = model.set_fused(False)(data, **kwargs)
    model.set_fused(True)
    return fused, reference


@pytest.mark.parametrize('variant', _VARIANTS)
def test_fused_equals_reference_on_molecules(variant):
    model = _model(**variant)
    fused, reference = _both_paths(model, _molecules(), forces=True)
    for a, b in zip(fused, reference, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)
    assert fused[1].abs().max() > 1e-3  # non-trivial forces


@pytest.mark.parametrize('variant', _VARIANTS[:2])
def test_fused_equals_reference_on_crystals_with_stress(variant):
    model = _model(**variant)
    fused, reference = _both_paths(model, _crystals(), forces=True,
                                   stress=True)
    for a, b in zip(fused, reference, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)
    assert fused[2].abs().max() > 1e-4


def test_fused_on_a_full_edge_list():
    # A prebuilt graph whose edges cannot be paired: the non-symmetric
    # fused operator (each listed edge one message).
    model = _model()
    data = PeriodicRadiusGraph(4.0)(g2_data('C6H6'))
    keep = torch.arange(data.edge_index.size(1)) % 3 != 0
    data.edge_index = data.edge_index[:, keep]
    assert half_pairs(data.edge_index, None, data.num_nodes) is None
    fused, reference = _both_paths(model, data, forces=True)
    for a, b in zip(fused, reference, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize('activations', [1, 2])
@pytest.mark.parametrize('symmetric', [True, False])
@pytest.mark.parametrize('keep', [True, False])
def test_operator_gradients_equal_autograd_of_the_reference(
        activations, symmetric, keep, monkeypatch):
    # Gradients of every input, weights included (committees and
    # uncertainty methods differentiate with respect to them in eval
    # mode), with the filters kept for the backward pass and recomputed.
    import pyg_schnet.nn.fused as fused_module
    monkeypatch.setattr(fused_module, 'KEEP_FILTER_ELEMENTS',
                        2**30 if keep else 0)
    torch.manual_seed(1)
    conv = CFConv(16, 12, 3.0, filter_activations=activations).double()
    rbf = GaussianRBF(0.0, 3.0, 12).double()
    x = torch.randn(9, 16, dtype=torch.float64, requires_grad=True)
    d = (torch.rand(1300, dtype=torch.float64) * 3.4 + 0.4).requires_grad_()
    edge_index = torch.randint(0, 9, (2, 1300))  # 3 tiles of 512
    lin1, lin2 = conv.filter_network[0], conv.filter_network[2]
    grad_out = torch.randn(9, 16, dtype=torch.float64)
    inputs = [x, d, lin1.weight, lin1.bias, lin2.weight, lin2.bias]
    conv.train()  # reference path
    reference = conv(x, edge_index, d, rbf(d), symmetric)
    fused = fused_cfconv(x, rbf(d), conv.cutoff_fn(d),
                         (lin1.weight, lin1.bias), (lin2.weight, lin2.bias),
                         edge_index, conv.ssp_threshold, activations,
                         symmetric)
    torch.testing.assert_close(fused, reference, rtol=1e-12, atol=1e-12)
    for a, b in zip(torch.autograd.grad(fused, inputs, grad_out),
                    torch.autograd.grad(reference, inputs, grad_out,
                                        retain_graph=True), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)
    # Positions only (as forces need): no weight gradients, same numbers.
    with fused_module.frozen_weights():
        y = fused_cfconv(x, rbf(d), conv.cutoff_fn(d),
                         (lin1.weight, lin1.bias), (lin2.weight, lin2.bias),
                         edge_index, conv.ssp_threshold, activations,
                         symmetric)
    torch.testing.assert_close(torch.autograd.grad(y, d, grad_out)[0],
                               torch.autograd.grad(reference, d, grad_out)[0],
                               rtol=1e-10, atol=1e-10)


def test_two_threads_give_one_threads_numbers():
    model = _model()
    data = _crystals()
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = model(data, forces=True)
        torch.set_num_threads(2)
        two = model(data, forces=True)
    finally:
        torch.set_num_threads(threads)
    for a, b in zip(one, two, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


def test_hessian_through_the_fused_operator_equals_the_reference():
    # Second derivatives (vibrational modes) in evaluation mode: the fused
    # operator's backward is then the differentiable reference formula.
    model = _model(filter_activations=2)
    data = PeriodicRadiusGraph(4.0)(g2_data('CH3CH2OH'))
    batch = torch.zeros(data.num_nodes, dtype=torch.long)
    pairs = data.edge_index[:, half_pairs(data.edge_index, None,
                                          data.num_nodes)]

    def energy(flat):
        return model.energy(data.z, flat.view(-1, 3), pairs, batch, 1,
                            symmetric=True).sum()
    flat = data.pos.reshape(-1)
    fused = torch.autograd.functional.hessian(energy, flat)
    model.set_fused(False)
    reference = torch.autograd.functional.hessian(energy, flat)
    torch.testing.assert_close(fused, reference, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(fused, fused.T, rtol=1e-10, atol=1e-10)
    assert fused.abs().max() > 1e-2

    # A force loss differentiated for the weights in evaluation mode.
    def weight_grads(fused_path):
        model.set_fused(fused_path)
        model.zero_grad()
        pos = data.pos.clone().requires_grad_(True)
        e = model.energy(data.z, pos, pairs, batch, 1, symmetric=True)
        (forces,) = torch.autograd.grad(e.sum(), pos, create_graph=True)
        (forces ** 2).sum().backward()
        return [p.grad.clone() for p in model.parameters()
                if p.grad is not None]
    fused_grads, reference_grads = weight_grads(True), weight_grads(False)
    assert len(fused_grads) == len(reference_grads) > 10
    for a, b in zip(fused_grads, reference_grads, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)


def test_training_takes_the_reference_path():
    # Force training needs the twice-differentiable path.
    model = _model().train()
    data = g2_data('CH3CH2OH')
    energy, forces = model(data, forces=True)
    (forces ** 2).sum().backward()
    assert model.interactions[0].conv.filter_network[0].weight.grad \
        .abs().max() > 0


def test_compile_and_export_see_the_operator():
    model = _model()
    data = PeriodicRadiusGraph(4.0)(g2_data('CH3COOH'))
    batch = torch.zeros(data.num_nodes, dtype=torch.long)
    pairs = data.edge_index[:, half_pairs(data.edge_index, None,
                                          data.num_nodes)]
    cell = torch.zeros(1, 3, 3, dtype=torch.float64)
    offsets = torch.zeros(pairs.size(1), 3, dtype=torch.float64)
    args = (data.z, data.pos, pairs, batch, cell, offsets)
    expected = model.energy(data.z, data.pos, data.edge_index, batch, 1)
    program = export_energy(model, *args, fused=True)
    assert 'pyg_schnet.cfconv' in str(program.graph)
    torch.testing.assert_close(program.module()(*args), expected,
                               rtol=1e-12, atol=1e-12)
    portable = export_energy(model, *args)
    assert 'pyg_schnet' not in str(portable.graph)
    torch.testing.assert_close(portable.module()(*args), expected,
                               rtol=1e-12, atol=1e-12)

    torch._dynamo.reset()
    explanation = torch._dynamo.explain(model.energy)(
        data.z, data.pos, data.edge_index, batch, 1)
    assert explanation.graph_break_count == 0, explanation.break_reasons


def test_float32_energy_of_a_large_crystal_is_within_1e5_ev_per_atom():
    torch.manual_seed(0)
    model = SchNet(hidden_channels=64, num_filters=64, num_interactions=3,
                   cutoff=5.0, mean=-3.5, std=0.5).eval()
    cu = bulk('Cu', 'fcc', a=3.61, cubic=True).repeat((6, 6, 6))  # 864
    cu.rattle(0.05, seed=0)
    data32 = from_ase(cu, torch.float32)
    energy32, forces32 = model(data32, forces=True)
    data64 = from_ase(cu, torch.float64)
    energy64, forces64 = model.double()(data64, forces=True)
    per_atom = abs(float(energy32) - float(energy64)) / len(cu)
    assert per_atom < 1e-5, per_atom
    assert float((forces32.double() - forces64).abs().max()) < 1e-4


def test_a_structure_without_pairs():
    # Two atoms beyond the cutoff: no pairs, the embedding's energy only.
    from torch_geometric.data import Data
    model = _model()
    data = Data(z=torch.tensor([6, 8]),
                pos=torch.tensor([[0.0, 0, 0], [9.0, 0, 0]],
                                 dtype=torch.float64))
    fused, reference = _both_paths(model, data, forces=True)
    for a, b in zip(fused, reference, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
    assert float(fused[1].abs().max()) == 0.0


def test_without_the_operator_models_take_the_reference_path(monkeypatch):
    # An install without a compiler: the same numbers, the reference path.
    import pyg_schnet.nn.cfconv as cfconv
    import pyg_schnet.nn.fused as fused
    model = _model()
    data = _molecules()
    expected = model(data, forces=True)
    monkeypatch.setattr(cfconv, '_FUSED', False)
    monkeypatch.setattr(fused, '_AVAILABLE', False)
    calls = []
    monkeypatch.setattr(fused._FusedCFConv, 'apply',
                        lambda *a: calls.append(1))
    out = model(data, forces=True)
    assert not calls
    for a, b in zip(out, expected, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)
    with pytest.raises(RuntimeError, match='not available'):
        fused_cfconv(data.pos, data.pos, data.pos[:, 0], (None, None),
                     (None, None), torch.zeros(2, 1, dtype=torch.long))


def test_compiled_calculator_equals_the_default_path():
    # SchNetCalculator(compile=True): torch.compile-d energies (reference
    # path), autograd forces; the same numbers along a few MD steps.
    from ase.build import molecule
    from ase.md.verlet import VelocityVerlet

    from pyg_schnet.md import SchNetCalculator
    model = _model()
    atoms = molecule('CH3CH2OH')
    atoms.rattle(0.05, seed=3)
    results = []
    for compiled in (False, True):
        a = atoms.copy()
        a.calc = SchNetCalculator(model, dtype=torch.float64,
                                  compile=compiled)
        dyn = VelocityVerlet(a, timestep=0.5)
        trajectory = []
        for _ in range(3):
            dyn.run(2)
            trajectory.append((a.get_potential_energy(), a.get_forces(),
                               a.get_potential_energies()))
        results.append(trajectory)
    for (e0, f0, a0), (e1, f1, a1) in zip(*results, strict=True):
        assert abs(e0 - e1) < 1e-9
        assert abs(f0 - f1).max() < 1e-9
        assert abs(a0 - a1).max() < 1e-9
    with pytest.raises(ValueError, match="'compile' must be True or False"):
        SchNetCalculator(model, compile='yes')


def test_out_of_range_pair_indices_are_refused():
    x = torch.randn(3, 4, dtype=torch.float64)
    rbf = torch.rand(2, 5, dtype=torch.float64)
    fc = torch.ones(2, dtype=torch.float64)
    lin1 = (torch.randn(4, 5, dtype=torch.float64),
            torch.zeros(4, dtype=torch.float64))
    lin2 = (torch.randn(4, 4, dtype=torch.float64),
            torch.zeros(4, dtype=torch.float64))
    for bad in ([[0, 3], [1, 2]], [[0, 1], [-1, 2]]):
        with pytest.raises(RuntimeError, match=r'pair indices must lie in'):
            fused_cfconv(x, rbf, fc, lin1, lin2, torch.tensor(bad))
