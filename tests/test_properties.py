"""Property heads: dipole moments from latent charges, polarizability
tensors and the spatial extent; their symmetries, units and training with
forces."""
import json

import numpy as np
import pytest
import torch
from ase.build import molecule
from ase.units import Bohr, Debye
from torch_geometric.data import Batch, Data

from pyg_schnet.models import DTNN, SchNet, load_model, save_model
from pyg_schnet.nn.properties import (
    Dipole,
    Polarizability,
    SpatialExtent,
    centre_of_mass,
)
from tests.conftest import cli_error, g2_data, random_rotation

HEADS = ['dipole', 'polarizability', 'spatial_extent']


def head_models():
    torch.manual_seed(1)
    return {'schnet': SchNet(32, 32, 2, 20, cutoff=4.0, properties=HEADS)
            .double().eval(),
            'dtnn': DTNN(16, 24, 2, cutoff=4.0, init='glorot',
                         properties=HEADS).double().eval()}


@pytest.fixture(params=['schnet', 'dtnn'])
def model(request):
    return head_models()[request.param]


def test_heads_repr():
    assert repr(Dipole(32)) == 'Dipole(32, hidden_channels=16)'
    assert repr(Polarizability(32, 8)) == \
        'Polarizability(32, hidden_channels=8)'
    assert repr(SpatialExtent(10)) == 'SpatialExtent(10, hidden_channels=5)'
    assert repr(SchNet(16, 16, 1, 10, properties=['dipole'])) == (
        "SchNet(hidden_channels=16, num_filters=16, num_interactions=1, "
        "num_gaussians=10, cutoff=5.0, readout='sum', "
        "properties=['dipole'])")


def test_rotation_rotates_dipole_and_polarizability(model):
    data = g2_data('CH3CH2OH')
    R = random_rotation(3)
    shift = torch.tensor([0.7, -1.2, 2.5], dtype=torch.float64)
    moved = Data(z=data.z, pos=data.pos @ R.T + shift)
    a, b = model.compute(data, forces=True), model.compute(moved, forces=True)
    assert torch.allclose(b['dipole'], a['dipole'] @ R.T, atol=1e-10)
    assert torch.allclose(b['polarizability'][0],
                          R @ a['polarizability'][0] @ R.T, atol=1e-10)
    assert torch.allclose(b['spatial_extent'], a['spatial_extent'],
                          atol=1e-10)
    assert torch.allclose(b['charges'], a['charges'], atol=1e-12)
    assert torch.allclose(b['forces'], a['forces'] @ R.T, atol=1e-10)
    assert torch.allclose(b['energy'], a['energy'], atol=1e-10)
    # the dipole of a molecule is not zero by symmetry here: the check bites
    assert float(a['dipole'].norm()) > 1e-3


def test_permutation_permutes_charges_only(model):
    data = g2_data('CH3COOH')
    perm = torch.randperm(data.z.numel(), generator=torch.Generator()
                          .manual_seed(0))
    a = model.compute(data)
    b = model.compute(Data(z=data.z[perm], pos=data.pos[perm]))
    assert torch.allclose(b['charges'], a['charges'][perm], atol=1e-12)
    for key in ('dipole', 'polarizability', 'spatial_extent'):
        assert torch.allclose(b[key], a[key], atol=1e-10), key


def test_charges_sum_to_the_total_charge_and_origin_does_not_matter(model):
    water, ammonia = g2_data('H2O'), g2_data('NH3')
    water.charge = torch.tensor([0.0], dtype=torch.float64)
    ammonia.charge = torch.tensor([1.0], dtype=torch.float64)
    batch = Batch.from_data_list([water, ammonia])
    out = model.compute(batch)
    totals = torch.zeros(2, dtype=torch.float64).index_add_(
        0, batch.batch, out['charges'])
    assert torch.allclose(totals, torch.tensor([0.0, 1.0],
                                               dtype=torch.float64),
                          atol=1e-12)
    # neutral: sum_i q_i r_i is the same about any origin
    q = out['charges'][batch.batch == 0]
    about_zero = (q.unsqueeze(-1) * water.pos).sum(0)
    assert torch.allclose(out['dipole'][0], about_zero, atol=1e-12)
    # an ion: about the centre of mass
    q1 = out['charges'][batch.batch == 1]
    centre = centre_of_mass(ammonia.pos, ammonia.z,
                            torch.zeros(4, dtype=torch.long), 1)
    assert torch.allclose(out['dipole'][1],
                          (q1.unsqueeze(-1) * (ammonia.pos - centre)).sum(0),
                          atol=1e-12)
    # batched equals one by one
    alone = model.compute(ammonia)
    assert torch.allclose(alone['dipole'][0], out['dipole'][1], atol=1e-12)


def test_polarizability_is_the_documented_sum():
    torch.manual_seed(0)
    head = Polarizability(8).double()
    x = torch.randn(5, 8, dtype=torch.float64)
    pos = torch.randn(5, 3, dtype=torch.float64)
    z = torch.tensor([6, 1, 1, 8, 1])
    batch = torch.zeros(5, dtype=torch.long)
    alpha = head(x, pos, z, batch, 1)[0]
    a, c = head.net.per_atom(x).unbind(-1)
    r = pos - centre_of_mass(pos, z, batch, 1)[0]
    expected = sum(a[i] * torch.eye(3, dtype=torch.float64) +
                   c[i] * torch.outer(r[i], r[i]) for i in range(5))
    assert torch.allclose(alpha, expected, atol=1e-12)
    assert torch.allclose(alpha, alpha.T)
    assert torch.allclose(alpha.trace() / 3,
                          (a + c * r.pow(2).sum(-1) / 3).sum(), atol=1e-12)


def test_heads_survive_saving_and_reject_crystals(tmp_path, model):
    data = g2_data('HCOOH')
    path = tmp_path / 'model.pt'
    save_model(model, path)
    loaded, _ = load_model(path)
    loaded = loaded.double().eval()
    a, b = model.compute(data), loaded.compute(data)
    for key in a:
        assert torch.allclose(a[key], b[key], atol=1e-12), key
    crystal = Data(z=torch.tensor([29]), pos=torch.zeros(1, 3,
                                                         dtype=torch.float64),
                   cell=3.6 * torch.eye(3, dtype=torch.float64).view(1, 3, 3),
                   pbc=torch.ones(1, 3, dtype=torch.bool))
    with pytest.raises(ValueError, match='periodic'):
        model.compute(crystal)
    with pytest.raises(ValueError, match='unknown properties'):
        SchNet(properties=['charge'])


def test_calculator_returns_the_dipole(model):
    from pyg_schnet.md import SchNetCalculator

    atoms = molecule('CH3CN')
    atoms.calc = SchNetCalculator(model, dtype=torch.float64)
    out = model.compute(g2_data('CH3CN'))
    assert np.allclose(atoms.get_dipole_moment(), out['dipole'][0].numpy(),
                       atol=1e-10)
    assert np.allclose(atoms.get_charges(), out['charges'].numpy(),
                       atol=1e-10)
    assert abs(atoms.get_charges().sum()) < 1e-10
    assert atoms.calc.results['polarizability'].shape == (3, 3)
    atoms.info['charge'] = -1.0
    atoms.calc.reset()
    assert abs(atoms.get_charges().sum() + 1.0) < 1e-10


def test_qm9_units_and_polarizability_tensors(tmp_path):
    import pandas as pd

    from pyg_schnet.data import QM9
    from pyg_schnet.data.qm9 import qm9pack_data_dir

    data = QM9(str(tmp_path), max_molecules=50)
    csv = pd.read_csv(f'{qm9pack_data_dir()}/qm9_part1.csv', nrows=50,
                      usecols=['Dipole_debye', 'Polarizability_bohr3',
                               'R2_bohr2'])
    assert np.allclose(data.mu.numpy(), csv['Dipole_debye'] * Debye)
    assert np.allclose(data.alpha.numpy(),
                       csv['Polarizability_bohr3'] * Bohr**3)
    assert np.allclose(data.r2.numpy(), csv['R2_bohr2'] * Bohr**2)
    tensors = data.polarizability
    assert tensors.shape == (50, 3, 3)
    assert torch.allclose(tensors, tensors.transpose(1, 2))
    # the isotropic value is the tensor's trace / 3 (to the CSV's digits)
    iso = tensors.diagonal(dim1=1, dim2=2).mean(-1)
    assert torch.allclose(iso, data.alpha, atol=0.01 * Bohr**3)


def test_eigenvalue_comparison_ignores_the_labels_frame():
    from pyg_schnet.train.properties import compared

    torch.manual_seed(0)
    m = torch.randn(2, 3, 3, dtype=torch.float64)
    alpha = m @ m.transpose(1, 2)
    R = random_rotation(5)
    label = R @ alpha @ R.T
    predicted, reference = compared('polarizability',
                                    {'polarizability': alpha}, label)
    assert torch.allclose(predicted, reference, atol=1e-12)
    predicted, reference = compared('mu', {'dipole': torch.tensor(
        [[3.0, 4.0, 0.0]])}, torch.tensor([5.0]))
    assert float((predicted - reference).abs().max()) == 0.0


def _dipole_file(path, count=40, seed=0):
    r"""Rattled G2 molecules with EMT energies and forces and dipoles of
    fixed element charges neutralised per molecule (e·Å): a dipole that
    latent charges can represent exactly."""
    import ase.io
    from ase.calculators.emt import EMT

    chi = {1: 0.25, 6: -0.1, 7: -0.35, 8: -0.45}
    names = ['CH3CH2OH', 'H2O', 'NH3', 'HCOOH', 'CH3CN', 'CH3COOH']
    rng = np.random.default_rng(seed)
    frames = []
    for k in range(count):
        atoms = molecule(names[k % len(names)])
        atoms.positions += rng.normal(0.0, 0.08, atoms.positions.shape)
        q = np.array([chi[z] for z in atoms.numbers])
        q -= q.mean()
        r = atoms.positions - atoms.get_center_of_mass()
        atoms.calc = EMT()
        atoms.get_forces()
        atoms.info['dipole'] = (q[:, None] * r).sum(0)
        frames.append(atoms)
    ase.io.write(path, frames, format='extxyz')
    return frames


def test_dipole_vectors_train_together_with_forces(tmp_path):
    from pyg_schnet.cli import main

    frames = _dipole_file(tmp_path / 'dipoles.extxyz')
    run = tmp_path / 'run'
    assert main(['train', '--dataset', str(tmp_path / 'dipoles.extxyz'),
                 '--root', str(tmp_path / 'cache'), '--n-train', '28',
                 '--n-val', '6', '--n-test', '6', '--features', '32',
                 '--interactions', '2', '--cutoff', '4.0',
                 '--batch-size', '4', '--lr', '3e-3', '--epochs', '25',
                 '--max-time', 'none', '--no-progress', '--threads', '1',
                 '--properties', 'dipole', '--run-dir', str(run)]) == 0
    results = json.loads((run / 'results.json').read_text())
    assert 'test_forces_mae' in results and \
        np.isfinite(results['test_forces_mae'])
    dipole = results['properties']['dipole']
    assert dipole['unit'] == 'e·Å' and dipole['display_unit'] == 'D'
    assert dipole['mae_display'] == pytest.approx(dipole['mae'] / Debye)
    # far better than predicting no dipole at all
    size = np.mean([np.abs(a.info['dipole']).mean() for a in frames])
    assert dipole['mae'] < 0.3 * size, (dipole, size)
    # the energy was trained at the same time (first epoch vs best)
    rows = (run / 'metrics.csv').read_text().splitlines()
    header = rows[0].split(',')
    col = header.index('val_forces_mae')
    first, last = float(rows[1].split(',')[col]), \
        float(rows[-1].split(',')[col])
    assert last < first
    # the model carries its head: the calculator gives the dipole
    from pyg_schnet.md import SchNetCalculator
    atoms = frames[0].copy()
    atoms.calc = SchNetCalculator.from_run(run, dtype=torch.float64)
    error = np.abs(atoms.get_dipole_moment() - frames[0].info['dipole'])
    assert error.max() < 0.5 * np.abs(frames[0].info['dipole']).max() + 0.05


@pytest.mark.parametrize('argv,match', [
    (['--properties', 'charge'], 'unknown properties'),
    (['--properties', 'mu', 'dipole'], 'choose one'),
    (['--target', 'mu', '--properties', 'mu'], 'both the target'),
    (['--properties', 'mu', '--loss-weights', 'alpha=1'], 'not trained'),
    (['--properties', 'mu', '--loss-weights', 'U0=0', 'mu=0'],
     'nothing would be trained'),
    (['--loss-weights', 'U0=1'], 'give --properties'),
])
def test_property_options_are_checked_before_loading(capsys, tmp_path, argv,
                                                     match):
    cli_error(capsys, ['train', '--run-dir', str(tmp_path / 'r'), *argv],
              match)


def test_missing_property_label_is_named(capsys, tmp_path, emt_file):
    cli_error(capsys, ['train', '--dataset', str(emt_file), '--root',
                       str(tmp_path / 'cache'), '--run-dir',
                       str(tmp_path / 'r'), '--properties', 'dipole',
                       '--epochs', '1'], "no 'dipole' label")
