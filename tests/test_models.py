"""Physics of the SchNet and DTNN energies: invariances, forces,
smoothness, batching, persistence and bad input."""
import io

import pytest
import torch
from torch_geometric.data import Batch, Data

from pyg_schnet.graph import radius_graph
from pyg_schnet.models import DTNN, SchNet

from conftest import g2_data, random_rotation, small_models


def rel_close(a, b, rtol=1e-6):
    a, b = a.detach(), b.detach()
    return torch.allclose(a, b, rtol=rtol, atol=rtol * float(b.abs().max()))


def test_energy_shape_without_and_with_batch(model):
    data = g2_data('CH3CH2OH')
    assert model(data).shape == (1, )
    batch = Batch.from_data_list([data, g2_data('H2O'), g2_data('C6H6')])
    assert model(batch).shape == (3, )


def test_rotation_translation_invariance(model):
    data = g2_data('CH3COOH')
    e0 = model(data)
    rotated = Data(z=data.z, pos=data.pos @ random_rotation(1).T +
                   torch.tensor([3.0, -7.5, 11.0], dtype=torch.float64))
    assert rel_close(model(rotated), e0)


def test_permutation_invariance(model):
    data = g2_data('CH3CH2OH')
    perm = torch.randperm(data.num_nodes, generator=torch.Generator()
                          .manual_seed(4))
    _, forces = model(data, forces=True)
    e_p, forces_p = model(Data(z=data.z[perm], pos=data.pos[perm]),
                          forces=True)
    assert rel_close(e_p, model(data))
    # Forces are equivariant: they follow the atoms.
    assert rel_close(forces_p, forces[perm])


def test_forces_are_rotation_equivariant(model):
    data = g2_data('CH3CN')
    rot = random_rotation(7)
    _, f = model(data, forces=True)
    _, f_rot = model(Data(z=data.z, pos=data.pos @ rot.T), forces=True)
    assert rel_close(f_rot, f @ rot.T)


def test_forces_equal_minus_finite_difference_gradient(model):
    data = g2_data('CH3CH2OH')
    _, forces = model(data, forces=True)
    h = 1e-5
    numeric = torch.zeros_like(data.pos)
    for a in range(data.num_nodes):
        for k in range(3):
            plus, minus = data.pos.clone(), data.pos.clone()
            plus[a, k] += h
            minus[a, k] -= h
            e_plus = model(Data(z=data.z, pos=plus))
            e_minus = model(Data(z=data.z, pos=minus))
            numeric[a, k] = -(e_plus - e_minus).item() / (2 * h)
    assert forces.abs().max() > 1e-3, 'forces must not be trivially zero'
    torch.testing.assert_close(forces, numeric, rtol=1e-6, atol=1e-8)


def _triatomic_energy(model, d02):
    # Atom 1 at the origin, atom 0 at 1.1 Å, atom 2 on a sphere of 3.5 Å
    # around atom 1: only the 0-2 distance changes, so E is a function of
    # d02 alone and any kink or jump at the cutoff shows up undiluted.
    d01, d12 = 1.1, 3.5
    cos = (d01**2 + d12**2 - d02**2) / (2 * d01 * d12)
    sin = (1.0 - cos**2)**0.5
    pos = torch.tensor([[d01, 0.0, 0.0], [0.0, 0.0, 0.0],
                        [d12 * cos, d12 * sin, 0.0]], dtype=torch.float64)
    return model(Data(z=torch.tensor([6, 8, 1]), pos=pos)).item()


@pytest.mark.parametrize('name', ['schnet', 'dtnn'])
def test_energy_is_continuous_across_the_cutoff(name):
    model = small_models()[name]
    rc = model.cutoff
    jumps = [abs(_triatomic_energy(model, rc - step) -
                 _triatomic_energy(model, rc + step))
             for step in (1e-2, 1e-3, 1e-4)]
    assert jumps[0] > 0
    # |ΔE| -> 0 as the step -> 0, quadratically: no jump and no kink at r_c.
    assert jumps[1] < jumps[0] / 30 and jumps[2] < jumps[1] / 30
    assert jumps[2] < 1e-8


def test_dtnn_without_smooth_cutoff_jumps_at_the_cutoff():
    torch.manual_seed(0)
    model = DTNN(channels=16, num_factors=24, cutoff=4.0,
                 smooth_cutoff=False, init='glorot').double().eval()
    jump = abs(_triatomic_energy(model, model.cutoff - 1e-6) -
               _triatomic_energy(model, model.cutoff + 1e-6))
    assert jump > 1e-4, 'the unsmoothed network is discontinuous on a ' \
        'radius graph; the smooth cutoff is what removes the jump'


def test_dtnn_hard_cutoff_ignores_edges_beyond_it():
    # Regression: DTNN(cutoff=2, smooth_cutoff=False) gave 0.6085 on its
    # own 2 Å graph and 2.5535 on a 6 Å graph: the step at r_c was missing.
    torch.manual_seed(0)
    model = DTNN(channels=16, num_factors=24, cutoff=2.0,
                 smooth_cutoff=False, init='glorot').double().eval()
    data = g2_data('CH3CH2OH')
    own = model(data)
    wide = Data(z=data.z, pos=data.pos, edge_index=radius_graph(data.pos,
                                                               6.0))
    assert wide.edge_index.size(1) > radius_graph(data.pos, 2.0).size(1)
    torch.testing.assert_close(model(wide), own, rtol=1e-12, atol=1e-12)


def test_dtnn_original_initialisation():
    torch.manual_seed(0)
    model = DTNN()
    assert torch.equal(model.readout.lin2.weight,
                       torch.zeros_like(model.readout.lin2.weight))
    assert torch.equal(model.interactions[0].lin_fc.weight,
                       torch.zeros_like(model.interactions[0].lin_fc.weight))
    # Embeddings ~ N(0, 1/sqrt(30)): standard deviation 30^(-1/4) = 0.427.
    assert model.embedding.weight.std().item() == pytest.approx(
        30**-0.25, rel=0.05)
    glorot = DTNN(init='glorot')
    assert glorot.embedding.weight.std().item() == pytest.approx(1.0,
                                                                 rel=0.05)
    assert glorot.readout.lin2.weight.abs().sum() > 0
    # The original's 100 Gaussians of width 0.2 Å on [0, 20] Å.
    original = DTNN(num_gaussians=100, gaussian_width=0.2)
    assert original.rbf.num_gaussians == 100
    assert original.rbf.width == 0.2
    assert original.interactions[0].lin_df.in_channels == 100


@pytest.mark.parametrize('cls,changed', [
    (SchNet, dict(hidden_channels=12, num_filters=10, num_interactions=2,
                  num_gaussians=13, cutoff=4.5, gaussian_width=0.3,
                  filter_activations=2, readout='mean', max_z=20,
                  envelope='none', ssp_threshold=14.0,
                  properties=['dipole', 'polarizability'])),
    (DTNN, dict(channels=8, num_factors=9, num_interactions=2,
                shared_interactions=False, gaussian_spacing=0.3,
                num_gaussians=17, gaussian_width=0.25, cutoff=6.0,
                smooth_cutoff=False, hidden_channels=5, readout='mean',
                max_z=20, init='glorot', properties=['spatial_extent'])),
])
def test_config_round_trip_keeps_every_constructor_argument(cls, changed,
                                                             tmp_path):
    import inspect

    from pyg_schnet.models import load_model, save_model
    params = set(inspect.signature(cls.__init__).parameters) - {
        'self', 'atomref', 'mean', 'std'}
    # Every argument is changed from its default here: a new argument
    # must be added to this test, and then must survive the round trip.
    assert set(changed) == params
    torch.manual_seed(0)
    model = cls(**changed).double().eval()
    save_model(model, tmp_path / 'm.pt')
    clone, _ = load_model(tmp_path / 'm.pt')
    clone = clone.double()
    for name, value in changed.items():
        assert clone.config[name] == value, name
    assert repr(clone) == repr(model)
    data = g2_data('CH3CH2OH')
    torch.testing.assert_close(clone(data), model(data), rtol=0, atol=0)


def test_model_arguments_are_type_checked():
    with pytest.raises(ValueError, match='shared_interactions'):
        DTNN(shared_interactions='maybe')
    with pytest.raises(ValueError, match='cutoff'):
        SchNet(cutoff=float('inf'))
    with pytest.raises(ValueError, match='num_interactions'):
        SchNet(num_interactions=2.5)
    with pytest.raises(ValueError, match='hidden_channels'):
        SchNet(hidden_channels=0)


def test_batch_equals_single_graphs(model):
    datas = [g2_data(n) for n in ('CH3CH2OH', 'H2O', 'C6H6', 'NH3')]
    batch = Batch.from_data_list(datas)
    energy, forces = model(batch, forces=True)
    singles = [model(d, forces=True) for d in datas]
    torch.testing.assert_close(energy, torch.cat([e for e, _ in singles]),
                               rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(forces, torch.cat([f for _, f in singles]),
                               rtol=1e-12, atol=1e-12)


def test_graph_never_connects_two_molecules():
    # Two molecules on top of each other: in one batch, no edge between them.
    a, b = g2_data('C6H6'), g2_data('C6H6')
    batch = Batch.from_data_list([a, b])
    edge_index = radius_graph(batch.pos, 5.0, batch.batch)
    assert edge_index.numel() > 0
    assert torch.equal(batch.batch[edge_index[0]], batch.batch[edge_index[1]])


def test_radius_graph_never_truncates_dense_neighbourhoods():
    # 300 atoms in a 6 Å box, cutoff 5 Å: ~150 neighbours each, well above
    # torch_cluster's default cap of 32 and our first guess of 64.
    gen = torch.Generator().manual_seed(0)
    pos = torch.rand(300, 3, generator=gen, dtype=torch.float64) * 6.0
    edge_index = radius_graph(pos, 5.0)
    dist = torch.cdist(pos, pos)
    expected = ((dist < 5.0) & ~torch.eye(300, dtype=torch.bool)).sum()
    assert edge_index.size(1) == int(expected)
    assert torch.bincount(edge_index[1]).max() > 64
    with pytest.raises(ValueError, match='neighbours would be dropped'):
        radius_graph(pos, 5.0, max_num_neighbors=32)


def test_state_dict_round_trip_with_atomref_and_standardization(tmp_path):
    for cls, kwargs in ((SchNet, dict(hidden_channels=16, num_filters=16,
                                      num_interactions=2)),
                        (DTNN, dict(channels=8, num_factors=8))):
        torch.manual_seed(0)
        atomref = torch.zeros(101, dtype=torch.float64)
        atomref[[1, 6, 8]] = torch.tensor([-13.6, -1029.8, -2042.6],
                                          dtype=torch.float64)
        model = cls(**kwargs, atomref=atomref, mean=-0.25, std=0.7).eval()
        path = tmp_path / 'model.pt'
        torch.save(model.state_dict(), path)
        state = torch.load(path, weights_only=True)
        clone = cls.from_config(model.config)
        clone.load_state_dict(state)
        clone.eval()
        data = g2_data('CH3CH2OH', torch.float32)
        assert torch.equal(clone(data), model(data))
        assert clone.readout.mean.item() == pytest.approx(-0.25)
        assert torch.equal(clone.atomref, atomref)
        assert clone.use_atomref


def test_atomref_energies_are_float64_and_survive_float():
    torch.manual_seed(0)
    atomref = torch.zeros(101, dtype=torch.float64)
    atomref[1], atomref[6], atomref[8] = -13.61, -1029.86, -2042.61
    model = SchNet(hidden_channels=16, num_filters=16, num_interactions=1,
                   atomref=atomref).eval()
    model = model.float()
    assert model.atomref.dtype == torch.float64
    data = g2_data('CH3CH2OH', torch.float32)
    energy = model(data)
    assert energy.dtype == torch.float64
    learned = model.readout.per_atom(model.representation(
        data.z, radius_graph(data.pos, 5.0),
        (data.pos[radius_graph(data.pos, 5.0)[0]] -
         data.pos[radius_graph(data.pos, 5.0)[1]]).norm(dim=-1))).sum()
    expected = learned.double() + atomref[data.z].sum()
    assert abs(energy.item() - expected.item()) < 1e-6


def test_forces_keep_graph_only_while_training():
    model = small_models()['schnet']
    data = g2_data('H2O')
    _, forces = model(data, forces=True)
    assert not forces.requires_grad
    model.train()
    _, forces = model(data, forces=True)
    assert forces.requires_grad
    forces.pow(2).sum().backward()  # a force loss reaches the weights
    assert model.interactions[0].conv.filter_network[0].weight.grad is not None


def test_forces_work_under_no_grad():
    model = small_models()['dtnn']
    with torch.no_grad():
        energy, forces = model(g2_data('NH3'), forces=True)
    assert forces.shape == (4, 3) and torch.isfinite(forces).all()


def _bad(z, pos, **kwargs):
    return Data(z=torch.as_tensor(z), pos=torch.as_tensor(
        pos, dtype=torch.float64), **kwargs)


GOOD_POS = [[0.0, 0.0, 0.0], [0.96, 0.0, 0.0], [-0.24, 0.93, 0.0]]


@pytest.mark.parametrize('data, match', [
    (_bad([8, 1, 1], [[0.0, 0.0, 0.0], [float('nan'), 0, 0], [0, 1, 0]]),
     'not finite'),
    (_bad([8, 0, 1], GOOD_POS), 'unknown element.*atomic number 0'),
    (_bad([8, 101, 1], GOOD_POS), 'unknown element.*atomic number 101'),
    (_bad([8, 1, 1], [[0.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 1.0, 0.0]]),
     'overlapping atoms'),
    (_bad([8, 1], GOOD_POS), "'z' has 2 atoms but 'pos' has 3"),
    (_bad([8, 1, 1], [[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]]), 'shape'),
    (_bad([8.0, 1.0, 1.0], GOOD_POS), 'atomic numbers as torch.long'),
    (_bad(torch.tensor([8, 1, 1], dtype=torch.uint8), GOOD_POS),
     'torch.long.*uint8'),
    (_bad([8, 1, 1], GOOD_POS, batch=torch.tensor([1, 0, 0])),
     'not sorted'),
    (_bad([8, 1, 1], GOOD_POS, cell=torch.eye(3) * 10.0), "'pbc' is missing"),
])
def test_bad_input_raises_clear_value_error(model, data, match):
    with pytest.raises(ValueError, match=match):
        model(data)


def test_dtype_mismatch_is_explained(model):
    data = g2_data('H2O', torch.float32)
    with pytest.raises(ValueError, match='float32.*float64'):
        model(data)


def test_prebuilt_graph_with_smaller_cutoff_is_refused(model):
    from pyg_schnet.graph import PeriodicRadiusGraph
    data = PeriodicRadiusGraph(cutoff=2.0)(g2_data('C6H6'))
    with pytest.raises(ValueError, match='below the model cutoff'):
        model(data)
    data = PeriodicRadiusGraph(cutoff=model.cutoff)(g2_data('C6H6'))
    torch.testing.assert_close(model(data), model(g2_data('C6H6')))


def test_model_reprs_are_pinned():
    assert repr(SchNet()) == (
        'SchNet(hidden_channels=128, num_filters=128, num_interactions=6, '
        "num_gaussians=50, cutoff=5.0, readout='sum')")
    assert repr(DTNN()) == (
        'DTNN(channels=30, num_factors=60, num_interactions=3, '
        'shared_interactions=True, num_gaussians=101, cutoff=20.0, '
        "smooth_cutoff=True, readout='sum', init='dtnn')")


def test_default_sizes_and_shared_dtnn_weights():
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(SchNet()) == 455_937
    shared, unshared = DTNN(), DTNN(shared_interactions=False)
    assert len(shared.interactions) == 1 and len(unshared.interactions) == 3
    per_block = count(shared.interactions[0])
    assert count(unshared) - count(shared) == 2 * per_block
    assert count(shared) == 13_291


@pytest.mark.parametrize('shared', [True, False])
def test_dtnn_runs_every_pass(shared):
    # x <- x + v applied T times, with the shared block reused each pass.
    torch.manual_seed(0)
    model = DTNN(num_interactions=3, shared_interactions=shared,
                 cutoff=6.0, init='glorot').double()
    data = g2_data('CH3CH2OH')
    edge_index = radius_graph(data.pos, 6.0)
    i, j = edge_index
    d = (data.pos[j] - data.pos[i]).norm(dim=-1)
    x = model.embedding(data.z)
    for t in range(3):
        block = model.interactions[0 if shared else t]
        x = x + block(x, edge_index, d, model.rbf(d))
    assert torch.allclose(model.representation(data.z, edge_index, d), x)
    one_pass = DTNN(num_interactions=1, cutoff=6.0).double()
    one_pass.load_state_dict(model.state_dict(), strict=shared)
    assert not torch.allclose(one_pass(data), model(data))


def test_weights_only_load_of_whole_state(tmp_path):
    model = small_models()['schnet']
    buffer = io.BytesIO()
    torch.save({'config': model.config, 'state_dict': model.state_dict()},
               buffer)
    buffer.seek(0)
    loaded = torch.load(buffer, weights_only=True)
    clone = SchNet.from_config(loaded['config']).double().eval()
    clone.load_state_dict(loaded['state_dict'])
    data = g2_data('HCOOH')
    assert torch.equal(clone(data), model(data))


def test_set_standardization_equals_constructor_arguments():
    torch.manual_seed(0)
    a = SchNet(hidden_channels=16, num_filters=16, num_interactions=2,
               mean=-0.4, std=0.3).double().eval()
    torch.manual_seed(0)
    b = SchNet(hidden_channels=16, num_filters=16,
               num_interactions=2).double().eval()
    b.set_standardization(-0.4, 0.3)
    data = g2_data('CH3CH2OH')
    torch.testing.assert_close(a(data), b(data))
    with pytest.raises(ValueError, match="'std' must be positive"):
        b.set_standardization(0.0, 0.0)
    with pytest.raises(ValueError, match='extensive'):
        SchNet(readout='mean', atomref=torch.zeros(101))


def test_subclasses_record_their_own_constructor_arguments():
    class Plain(SchNet):  # no __init__ of its own: SchNet's arguments
        pass

    class Small(SchNet):  # its own __init__: its own arguments
        def __init__(self, width: int = 8):
            super().__init__(hidden_channels=width, num_filters=width,
                             num_interactions=1)

    plain = Plain(hidden_channels=16, num_filters=16, num_interactions=2)
    assert plain.config['hidden_channels'] == 16
    assert plain.config['num_interactions'] == 2
    small = Small(width=12)
    assert small.config == {'width': 12, 'use_atomref': False}
    assert small.embedding.embedding_dim == 12
