"""Interpretability: probe-atom potentials, atomic energies, embeddings,
surfaces and pictures."""
import pytest
import torch
from ase.build import molecule

from pyg_schnet.data import from_ase, from_smiles, qm9_atomref
from pyg_schnet.interpret import (
    atomic_energies,
    distance_sum_surface,
    element_embeddings,
    geometric_median,
    inverse_distance_surface,
    local_potential,
    plot_atomic_energies,
    plot_embeddings,
    plot_potential,
    vdw_surface,
)
from pyg_schnet.models import DTNN, SchNet


def _models():
    torch.manual_seed(0)
    schnet = SchNet(hidden_channels=32, num_filters=32, num_interactions=3,
                    cutoff=4.0, atomref=qm9_atomref('U0'), mean=-0.3,
                    std=2.0).double().eval()
    dtnn = DTNN(channels=16, num_factors=24, cutoff=4.0,
                init='glorot').double().eval()
    return {'schnet': schnet, 'dtnn': dtnn}


@pytest.fixture(params=['schnet', 'dtnn'])
def model(request):
    return _models()[request.param]


def _molecule():
    return from_ase(molecule('CH3CH2OH'), torch.float64)


def test_atomic_energies_sum_to_the_energy(model):
    data = _molecule()
    energies = atomic_energies(model, data)
    assert energies.shape == (data.num_nodes, )
    torch.testing.assert_close(energies.sum(), model(data)[0], rtol=1e-10,
                               atol=1e-10)


def test_probes_leave_the_molecule_bit_identical(model):
    data = _molecule()
    points = vdw_surface(data, offset=1.0)
    omega, atoms = local_potential(model, data, points, chunk=97,
                                   return_atomic=True)
    assert omega.shape == (points.size(0), )
    assert torch.equal(atoms, atomic_energies(model, data))


@pytest.mark.parametrize('probe_z', [1, 8])
def test_probe_equals_the_model_on_molecule_plus_probe(model, probe_z):
    # An independent computation of what local_potential claims: the
    # model's own per-atom energies on the molecule with the probe added as
    # an atom, every edge kept except those leaving the probe (it receives
    # messages and sends none). The molecule's atoms must then get their
    # energies without a probe, and the probe must get Omega.
    from pyg_schnet.graph import radius_graph
    data = _molecule()
    points = vdw_surface(data, offset=0.8)[::37]
    omega = local_potential(model, data, points, probe_z=probe_z)
    alone = atomic_energies(model, data)
    n = data.num_nodes
    for k in range(points.size(0)):
        z = torch.cat([data.z, torch.tensor([probe_z])])
        pos = torch.cat([data.pos, points[k:k + 1]])
        edge_index = radius_graph(pos, model.cutoff)
        edge_index = edge_index[:, edge_index[0] != n]  # probe sends none
        batch = torch.zeros(n + 1, dtype=torch.long)
        y = model.per_atom_energy(z, pos, edge_index, batch).detach()
        torch.testing.assert_close(y[:n], alone, rtol=1e-10, atol=1e-10)
        torch.testing.assert_close(y[n], omega[k], rtol=1e-10, atol=1e-10)


def test_probe_far_away_gets_the_isolated_atom_value(model):
    data = _molecule()
    far = data.pos.mean(dim=0) + torch.tensor([[50.0, 0, 0], [0, 80.0, 0]],
                                              dtype=torch.float64)
    omega = local_potential(model, data, far, probe_z=1)
    isolated = model.readout.per_atom(model.embedding(
        torch.tensor([1]))).squeeze().double()
    if model.use_atomref:
        isolated = isolated + model.atomref[1]
    torch.testing.assert_close(omega, isolated.expand(2), rtol=1e-12,
                               atol=1e-12)
    # A lone probe atom is what the model gives a single H atom.
    lone = from_ase(molecule('H'), torch.float64)
    torch.testing.assert_close(omega[0], model(lone)[0], rtol=1e-10,
                               atol=1e-10)


def test_probes_equal_an_explicit_joint_graph(model):
    # Each probe's value equals that of a graph holding the molecule and
    # that probe, with edges from the molecule to the probe only.
    data = _molecule()
    points = data.pos[:2] + torch.tensor([[1.3, 0.4, -0.2],
                                          [-0.9, 1.1, 0.5]],
                                         dtype=torch.float64)
    omega = local_potential(model, data, points)
    from pyg_schnet.graph import radius_graph
    for k in range(2):
        pos = torch.cat([data.pos, points[k:k + 1]])
        z = torch.cat([data.z, torch.tensor([1])])
        n = data.num_nodes
        full = radius_graph(pos, model.cutoff)
        keep = full[0] != n  # the probe sends nothing
        edge_index = full[:, keep]
        d = (pos[edge_index[0]] - pos[edge_index[1]]).norm(dim=-1)
        x = model.representation(z, edge_index, d)
        y = model.readout.per_atom(x).squeeze(-1)[n]
        if model.use_atomref:
            y = y + model.atomref[1]
        torch.testing.assert_close(omega[k], y, rtol=1e-10, atol=1e-10)


def test_potential_is_smooth_in_the_probe_position(model):
    # Along a path that crosses atoms' cutoff spheres: halving the spacing
    # halves the first differences (no jump) and quarters the second
    # differences (no kink): Omega is continuously differentiable.
    data = _molecule()
    start = data.pos[0] + torch.tensor([0.0, 0.0, 1.5], dtype=torch.float64)
    direction = torch.tensor([1.0, 0.3, 0.2], dtype=torch.float64)

    def differences(count):
        t = torch.linspace(0, 5.0, count, dtype=torch.float64)
        omega = local_potential(model, data, start + t.unsqueeze(-1) *
                                direction)
        first = (omega[1:] - omega[:-1]).abs().max()
        second = (omega[2:] - 2 * omega[1:-1] + omega[:-2]).abs().max()
        return float(first), float(second)
    first_h, second_h = differences(501)
    first_half, second_half = differences(1001)
    assert 1.8 < first_h / first_half < 2.2
    assert 3.2 < second_h / second_half < 4.8


def test_distance_sum_level_set_is_refused_when_empty():
    data = from_smiles('O=CNC=O', seed=0, dtype=torch.float64)
    median = geometric_median(data.pos)
    lowest = float((data.pos - median).norm(dim=-1).sum())
    assert lowest > 3.7  # the thesis' 3.7 Å cannot be reached
    with pytest.raises(ValueError, match=f'smallest attainable value is '
                       f'{lowest:.3f}'):
        distance_sum_surface(data, 3.7)
    points = distance_sum_surface(data, lowest + 5.0, directions=300)
    sums = (points.unsqueeze(1) - data.pos).norm(dim=-1).sum(dim=-1)
    torch.testing.assert_close(sums, torch.full_like(sums, lowest + 5.0),
                               rtol=1e-8, atol=1e-8)


def test_inverse_distance_and_vdw_surfaces():
    data = from_smiles('O=CNC=O', seed=0, dtype=torch.float64)
    points = inverse_distance_surface(data, 2.0, directions=300)
    values = (1.0 / (points.unsqueeze(1) - data.pos).norm(dim=-1)).sum(-1)
    torch.testing.assert_close(values, torch.full_like(values, 2.0),
                               rtol=1e-8, atol=1e-8)
    from ase.data.vdw_alvarez import vdw_radii
    surface = vdw_surface(data, offset=1.0)
    radii = torch.tensor([vdw_radii[int(z)] for z in data.z]) + 1.0
    gap = ((surface.unsqueeze(1) - data.pos).norm(dim=-1) - radii)
    assert float(gap.min(dim=1).values.abs().max()) < 1e-9


def test_element_embeddings_pca():
    model = _models()['schnet']
    result = element_embeddings(model, ['Al', 'Ni', 'Cu', 'Pd', 'Ag', 'Pt',
                                        'Au'])
    assert result['symbols'] == ['Al', 'Ni', 'Cu', 'Pd', 'Ag', 'Pt', 'Au']
    assert result['groups'] == [13, 10, 11, 10, 11, 10, 11]
    assert result['components'].shape == (7, 2)
    variance = result['explained_variance']
    assert float(variance[0]) >= float(variance[1]) > 0
    centred = result['vectors'] - result['vectors'].mean(dim=0)
    total = float(centred.pow(2).sum())
    torch.testing.assert_close(result['components'].pow(2).sum(dim=0) /
                               total, variance, rtol=1e-10, atol=1e-12)
    with pytest.raises(ValueError, match='unknown element'):
        element_embeddings(model, ['H', 'C', 'Xx'])


def test_pictures_are_written(tmp_path):
    model = _models()['schnet']
    data = _molecule()
    points = vdw_surface(data)
    plot_potential(data, points, local_potential(model, data, points),
                   tmp_path / 'p.png', 'test')
    plot_atomic_energies(data, atomic_energies(model, data),
                         tmp_path / 'a.png', reference=model.atomref)
    plot_embeddings(element_embeddings(model, ['H', 'C', 'N', 'O']),
                    tmp_path / 'e.png')
    for name in ('p.png', 'a.png', 'e.png'):
        assert (tmp_path / name).read_bytes()[:4] == b'\x89PNG'


def test_bad_input():
    model = _models()['schnet']
    data = _molecule()
    with pytest.raises(ValueError, match=r'\[M, 3\]'):
        local_potential(model, data, torch.zeros(4, 2))
    with pytest.raises(ValueError, match='NaN'):
        local_potential(model, data, torch.full((1, 3), float('nan')))
    with pytest.raises(ValueError, match='probe element'):
        local_potential(model, data, torch.zeros(1, 3), probe_z=0)


def test_explain_cli(tmp_path, capsys):
    from pyg_schnet.cli import main
    from pyg_schnet.models import save_model
    model = _models()['schnet']
    model.trained_elements = [1, 6, 7, 8]
    save_model(model, tmp_path / 'model.pt')
    out = tmp_path / 'p.png'
    assert main(['explain', 'potential', str(tmp_path / 'model.pt'),
                 '--smiles', 'O=CNC=O', '--out', str(out)]) == 0
    printed = capsys.readouterr().out
    assert 'lowest potential' in printed and out.exists()
    assert main(['explain', 'potential', str(tmp_path / 'model.pt'),
                 '--smiles', 'O=CNC=O', '--remove-atom', '6', '--out',
                 str(tmp_path / 'v.png')]) == 0
    assert main(['explain', 'atoms', str(tmp_path / 'model.pt'), '--smiles',
                 'CCO', '--out', str(tmp_path / 'a.png')]) == 0
    assert 'atomic energies of CCO' in capsys.readouterr().out
    assert main(['explain', 'embeddings', str(tmp_path / 'model.pt'),
                 '--out', str(tmp_path / 'e.png')]) == 0
    assert 'principal components of 4' in capsys.readouterr().out
    # The thesis' surface is empty for this molecule: a clear error.
    assert main(['explain', 'potential', str(tmp_path / 'model.pt'),
                 '--smiles', 'O=CNC=O', '--surface', 'distance-sum',
                 '--level', '3.7', '--out', str(tmp_path / 'd.png')]) == 2
    assert 'smallest attainable value' in capsys.readouterr().err
    assert main(['explain', 'potential', str(tmp_path / 'model.pt'),
                 '--smiles', 'O=CNC=O', '--out', str(out)]) == 2
    assert 'pass --overwrite' in capsys.readouterr().err


def test_predict_with_a_pretrained_model(tmp_path, capsys):
    import ase.io

    from pyg_schnet.cli import main
    from pyg_schnet.data import to_ase
    path = tmp_path / 'mols.extxyz'
    ase.io.write(path, [to_ase(from_smiles(s)) for s in ('CCO', 'O=CNC=O')])
    assert main(['predict', '--list']) == 0
    assert 'schnet-qm9-U0' in capsys.readouterr().out
    assert main(['predict', '--pretrained', 'schnet-qm9-U0',
                 str(path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3 and 'C2H6O' in lines[1]
    assert main(['predict', '--pretrained', 'no-such-model',
                 str(path)]) == 2
    err = capsys.readouterr().err
    assert '(available: dtnn-qm9-U0, schnet-qm9-U0)' in err


def test_embedding_scores_on_embeddings_built_to_be_periodic():
    # Embeddings built by hand: one direction per group plus a component
    # that grows with the period. Every element's nearest neighbour is in
    # its group, far above random labels; PC1 follows the period.
    from pyg_schnet.interpret import GROUPS, PERIODS, embedding_scores
    model = SchNet(hidden_channels=16, num_filters=16, num_interactions=1)
    symbols = ['Li', 'Na', 'K', 'Rb', 'Cs', 'F', 'Cl', 'Br', 'I',
               'O', 'S', 'Se', 'Te']
    from ase.data import atomic_numbers
    with torch.no_grad():
        model.embedding.weight.zero_()
        for s in symbols:
            z = atomic_numbers[s]
            row = model.embedding.weight[z]
            row[{1: 0, 16: 1, 17: 2}[GROUPS[z]]] = 5.0
            row[15] = 0.5 * PERIODS[z]
    scores = embedding_scores(model, symbols, permutations=300)
    assert scores['same_group'] == 1.0
    assert scores['null_mean'] < 0.5 and scores['p_value'] < 0.01
    for group in (1, 16, 17):
        row = scores['period_correlation'][group]
        assert abs(row['best']) == pytest.approx(1.0)
    # Five alkali metals in period order are not found by chance.
    assert scores['period_correlation'][1]['best_by_chance'] < 0.95
    # Random embeddings: the score is what random labels give.
    torch.manual_seed(0)
    noise = SchNet(hidden_channels=16, num_filters=16, num_interactions=1)
    random_scores = embedding_scores(noise, symbols, permutations=300)
    assert random_scores['p_value'] > 0.01
