"""Periodic edges against ASE, and the models on crystals: extensivity,
wrapping, forces and stress."""
import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import bulk, fcc111
from ase.geometry import cellpar_to_cell
from ase.neighborlist import neighbor_list
from torch_geometric.data import Batch, Data

from pyg_schnet.data import from_ase
from pyg_schnet.graph import PeriodicRadiusGraph, periodic_radius_graph
from pyg_schnet.models import DTNN, SchNet


def random_structure(rng, pbc=None, lengths=(2.0, 7.0)):
    n = int(rng.integers(1, 10))
    cell = cellpar_to_cell(np.r_[rng.uniform(*lengths, 3),
                                 rng.uniform(60, 120, 3)])
    pbc = rng.random(3) < 0.7 if pbc is None else pbc
    # Atoms partly outside the cell: the builder must wrap them itself.
    frac = rng.uniform(-0.5, 1.5, (n, 3))
    return Atoms(numbers=rng.integers(1, 10, n), positions=frac @ cell,
                 cell=cell, pbc=pbc)


def ase_edges(atoms, cutoff):
    i, j, S, d = neighbor_list('ijSd', atoms, cutoff)
    return {(a, b, tuple(s)): dist
            for a, b, s, dist in zip(i.tolist(), j.tolist(), S.tolist(), d,
                                     strict=True)}


def our_edges(atoms, cutoff, backend='auto'):
    pos = torch.tensor(atoms.positions)
    cell = torch.tensor(np.asarray(atoms.cell)).view(1, 3, 3)
    edge_index, offsets = periodic_radius_graph(
        pos, cutoff, cell, torch.tensor(atoms.pbc).view(1, 3),
        backend=backend)
    vec = pos[edge_index[0]] - pos[edge_index[1]] + offsets.double() @ cell[0]
    return {(i, j, tuple(s)): d for i, j, s, d in zip(
        edge_index[1].tolist(), edge_index[0].tolist(), offsets.tolist(),
        vec.norm(dim=-1).tolist(), strict=True)}


def assert_same_edges(atoms, cutoff):
    ref = ase_edges(atoms, cutoff)
    for backend in ('vesin', 'cells'):  # both backends, same pairs as ASE
        ours = our_edges(atoms, cutoff, backend)
        assert ours.keys() == ref.keys(), backend
        for key, d in ref.items():
            assert ours[key] == pytest.approx(d, abs=1e-9)
    return len(ref)


@pytest.mark.parametrize('seed', range(12))
def test_neighbours_match_ase_random_triclinic(seed):
    rng = np.random.default_rng(seed)
    atoms = random_structure(rng, pbc=np.array([True, True, True]))
    assert assert_same_edges(atoms, rng.uniform(2.0, 6.0)) > 0


@pytest.mark.parametrize('seed', range(8))
def test_neighbours_match_ase_cutoff_larger_than_cell(seed):
    rng = np.random.default_rng(100 + seed)
    atoms = random_structure(rng, pbc=np.array([True, True, True]),
                             lengths=(1.5, 3.0))
    cutoff = rng.uniform(4.0, 8.0)
    count = assert_same_edges(atoms, cutoff)
    # Many images, including of each atom itself.
    assert count > 20 * len(atoms)


@pytest.mark.parametrize('pbc', [[True, True, False], [True, False, False],
                                 [False, True, True], [False, False, False]])
def test_neighbours_match_ase_mixed_pbc(pbc):
    rng = np.random.default_rng(7)
    for _ in range(4):
        atoms = random_structure(rng, pbc=np.array(pbc))
        assert_same_edges(atoms, rng.uniform(2.0, 7.0))


def test_slab_neighbours_match_ase():
    slab = fcc111('Pt', size=(2, 2, 3), vacuum=6.0)
    slab.rattle(0.05, seed=1)
    slab.pbc = [True, True, False]
    assert_same_edges(slab, 5.5)


def test_batched_call_equals_separate_calls():
    rng = np.random.default_rng(3)
    structures = [random_structure(rng) for _ in range(5)]
    batch = Batch.from_data_list([from_ase(a) for a in structures])
    for backend in ('vesin', 'cells'):
        _check_batched(structures, batch, backend)


def _check_batched(structures, batch, backend):
    edge_index, offsets = periodic_radius_graph(
        batch.pos.double(), 4.0, batch.cell.double(), batch.pbc, batch.batch,
        backend=backend)
    for k, atoms in enumerate(structures):
        mask = batch.batch[edge_index[1]] == k
        start = int(batch.ptr[k])
        got = {(i - start, j - start, tuple(s)) for i, j, s in zip(
            edge_index[1, mask].tolist(), edge_index[0, mask].tolist(),
            offsets[mask].tolist(), strict=True)}
        assert got == set(ase_edges(atoms, 4.0).keys())


def test_transform_batches_offsets_without_increment():
    rng = np.random.default_rng(5)
    datas = [PeriodicRadiusGraph(3.5)(from_ase(random_structure(rng)))
             for _ in range(3)]
    batch = Batch.from_data_list(datas)
    assert torch.equal(batch.cell_offsets,
                       torch.cat([d.cell_offsets for d in datas]))
    assert torch.equal(batch.batch[batch.edge_index[0]],
                       batch.batch[batch.edge_index[1]])


def test_skewed_cell_is_refused_not_exhausting_memory():
    cell = torch.tensor([[1.083, 0.111, 0.824], [-0.528, 1.417, 2.460],
                         [-2.211, 2.060, 2.698]], dtype=torch.float64)
    with pytest.raises(ValueError, match='extremely skewed'):
        periodic_radius_graph(torch.zeros(1, 3, dtype=torch.float64), 2.0,
                              cell.view(1, 3, 3),
                              torch.ones(1, 3, dtype=torch.bool),
                              backend='cells')
    # vesin handles such a cell: every image found is within the cutoff.
    edge_index, offsets = periodic_radius_graph(
        torch.zeros(1, 3, dtype=torch.float64), 2.0, cell.view(1, 3, 3),
        torch.ones(1, 3, dtype=torch.bool), backend='vesin')
    assert edge_index.size(1) > 0
    assert bool(((offsets.double() @ cell).norm(dim=-1) < 2.0).all())


# -- models on crystals ------------------------------------------------------

def crystal_models():
    torch.manual_seed(0)
    return [SchNet(hidden_channels=16, num_filters=16, num_interactions=2,
                   num_gaussians=20, cutoff=4.5).double().eval(),
            DTNN(channels=12, num_factors=12, cutoff=4.5,
                 init='glorot').double().eval()]


def alloy(seed=0, repeat=1):
    atoms = bulk('Cu', 'fcc', a=3.61) * (2, 1, 1)
    atoms.symbols[1] = 'Au'
    atoms.cell[0] += [0.0, 0.3, 0.1]  # triclinic
    atoms.rattle(0.08, seed=seed)
    return atoms * (repeat, repeat, repeat)


def as_data(atoms):
    return from_ase(atoms, dtype=torch.float64)


@pytest.mark.parametrize('model', crystal_models(), ids=['schnet', 'dtnn'])
def test_supercell_energy_is_extensive(model):
    unit = alloy()
    e_unit = model(as_data(unit)).item()
    e_super = model(as_data(unit * (2, 2, 2))).item()
    assert abs(e_unit) > 1e-3
    assert e_super == pytest.approx(8 * e_unit, rel=1e-9)


@pytest.mark.parametrize('model', crystal_models(), ids=['schnet', 'dtnn'])
def test_slab_supercell_is_extensive_in_periodic_directions(model):
    slab = fcc111('Cu', size=(1, 1, 3), vacuum=5.0)
    slab.pbc = [True, True, False]
    slab.rattle(0.05, seed=2)
    e1 = model(as_data(slab)).item()
    assert model(as_data(slab * (2, 3, 1))).item() == \
        pytest.approx(6 * e1, rel=1e-9)


@pytest.mark.parametrize('model', crystal_models(), ids=['schnet', 'dtnn'])
def test_energy_invariant_under_wrapping(model):
    atoms = alloy(1)
    data = as_data(atoms)
    shifted = atoms.copy()  # atom 0 moved by a lattice vector
    shifted.positions[0] += np.array([2, -1, 3]) @ np.asarray(atoms.cell)
    wrapped = atoms.copy()
    wrapped.wrap()
    e = model(data)
    for other in (shifted, wrapped):
        torch.testing.assert_close(model(as_data(other)), e, rtol=1e-10,
                                   atol=1e-10)


@pytest.mark.parametrize('model', crystal_models(), ids=['schnet', 'dtnn'])
def test_forces_and_stress_match_finite_differences(model):
    atoms = alloy(2)
    data = as_data(atoms)
    energy, forces, stress = model(data, forces=True, stress=True)
    h = 1e-5

    def e(a):
        return model(as_data(a)).item()

    numeric = np.zeros((len(atoms), 3))
    for i in range(len(atoms)):
        for k in range(3):
            plus, minus = atoms.copy(), atoms.copy()
            plus.positions[i, k] += h
            minus.positions[i, k] -= h
            numeric[i, k] = -(e(plus) - e(minus)) / (2 * h)
    np.testing.assert_allclose(forces.numpy(), numeric, rtol=1e-6,
                               atol=1e-8)

    volume = atoms.get_volume()
    numeric = np.zeros((3, 3))
    for i in range(3):
        for k in range(3):
            eps = np.zeros((3, 3))
            eps[i, k] = eps[k, i] = h / 2 if i != k else h
            out = []
            for sign in (1, -1):
                strained = atoms.copy()
                strained.set_cell(np.asarray(atoms.cell) @
                                  (np.eye(3) + sign * eps), scale_atoms=True)
                out.append(e(strained))
            numeric[i, k] = (out[0] - out[1]) / (2 * h * volume)
    assert np.abs(numeric).max() > 1e-5
    np.testing.assert_allclose(stress[0].numpy(), numeric, rtol=1e-5,
                               atol=1e-9)
    torch.testing.assert_close(stress[0], stress[0].T)


def test_molecule_in_a_non_periodic_box_equals_free_molecule():
    from ase.build import molecule
    model = crystal_models()[0]
    mol = molecule('CH3CH2OH')
    boxed = mol.copy()
    boxed.cell = [12.0, 12.0, 12.0]
    boxed.pbc = False
    torch.testing.assert_close(model(as_data(boxed)), model(as_data(mol)))


def _periodic(cell):
    return Data(z=torch.tensor([29]), pos=torch.zeros(1, 3,
                                                      dtype=torch.float64),
                cell=cell.view(1, 3, 3), pbc=torch.ones(1, 3, dtype=bool))


@pytest.mark.parametrize('cell, match', [
    (torch.tensor([[3.6, 0, 0], [0, 3.6, 0], [3.6, 3.6, 0.0]]),
     'singular cell'),
    (torch.tensor([[3.6, 0, 0], [0, 3.6, 0], [0, 0, 0.0]]), 'singular cell'),
    (torch.tensor([[3.6, 0, 0], [0, float('nan'), 0], [0, 0, 3.6]]),
     'not finite'),
])
def test_bad_cells_raise(cell, match):
    model = crystal_models()[0]
    with pytest.raises(ValueError, match=match):
        model(_periodic(cell.double()))


def test_stress_without_a_cell_raises():
    from ase.build import molecule
    with pytest.raises(ValueError, match='stress needs a periodic cell'):
        crystal_models()[0](as_data(molecule('H2O')), stress=True)


def test_cell_in_another_dtype_than_positions():
    model = crystal_models()[0]
    data = as_data(alloy(3))
    single = data.clone()
    single.cell = data.cell.float()  # positions stay float64
    torch.testing.assert_close(model(single), model(data))
