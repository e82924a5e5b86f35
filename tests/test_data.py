"""Loaders: ASE, files, RDKit, QM9, labelling with real calculators."""
import os

import numpy as np
import pytest
import torch
from ase.build import bulk, molecule
from ase.calculators.emt import EMT
from torch_geometric.data import Batch

from pyg_schnet.data import (
    QM9,
    AtomsDataset,
    from_ase,
    from_rdkit,
    from_smiles,
    label_structures,
    make_calculator,
    molecule_snapshots,
    qm9_atomref,
    random_split,
    rattled_alloys,
    to_ase,
)
from pyg_schnet.data.qm9 import qm9pack_data_dir

HARTREE = 27.211386024367243


def test_from_ase_to_ase_round_trip_with_labels():
    atoms = rattled_alloys(1, seed=3)[0]
    atoms.calc = EMT()
    e, f, s = atoms.get_potential_energy(), atoms.get_forces(), \
        atoms.get_stress()
    data = from_ase(atoms, dtype=torch.float64)
    assert data.cell.shape == (1, 3, 3) and data.pbc.shape == (1, 3)
    assert data.energy.dtype == torch.float64
    back = to_ase(data)
    np.testing.assert_allclose(back.positions, atoms.positions)
    np.testing.assert_array_equal(back.numbers, atoms.numbers)
    np.testing.assert_allclose(np.asarray(back.cell), np.asarray(atoms.cell))
    assert back.pbc.tolist() == atoms.pbc.tolist()
    assert back.get_potential_energy() == pytest.approx(e)
    np.testing.assert_allclose(back.get_forces(), f)
    np.testing.assert_allclose(back.get_stress(), s)


def test_from_ase_does_not_start_a_calculation():
    atoms = molecule('H2O')
    atoms.calc = EMT()  # attached but never run
    data = from_ase(atoms)
    assert 'energy' not in data and 'forces' not in data


def test_to_ase_of_a_batch_gives_a_list():
    batch = Batch.from_data_list([from_ase(molecule('H2O')),
                                  from_ase(molecule('NH3'))])
    out = to_ase(batch)
    assert [a.get_chemical_formula() for a in out] == ['H2O', 'H3N']


def test_from_ase_rejects_bad_structures():
    bad = molecule('H2O')
    bad.positions[1, 0] = np.nan
    with pytest.raises(ValueError, match='not finite'):
        from_ase(bad)
    with pytest.raises(ValueError, match='unknown element'):
        from_ase(molecule('H2O').__class__(numbers=[0, 1],
                                           positions=[[0, 0, 0], [1, 0, 0]]))
    cell = bulk('Cu')
    cell.cell[1, 1] = np.inf
    with pytest.raises(ValueError, match='not finite'):
        from_ase(cell)


@pytest.mark.parametrize('suffix', ['extxyz', 'traj', 'db'])
def test_atoms_dataset_reads_labelled_files(tmp_path, suffix):
    structures = rattled_alloys(4, seed=1)
    path = tmp_path / f'alloys.{suffix}'
    labelled = label_structures(structures, EMT, path,
                                properties=('energy', 'forces', 'stress'))
    dataset = AtomsDataset(path, root=tmp_path / 'cache')
    assert len(dataset) == 4
    for data, atoms in zip(dataset, labelled, strict=True):
        assert data.energy.item() == pytest.approx(
            atoms.get_potential_energy(), rel=1e-12)
        np.testing.assert_allclose(data.forces.numpy(), atoms.get_forces(),
                                   rtol=1e-5, atol=1e-6)
        assert data.stress.shape == (1, 3, 3)
        assert bool(data.pbc.all())
    # The labels are the calculator's, not invented.
    fresh = structures[0].copy()
    fresh.calc = EMT()
    assert dataset[0].energy.item() == pytest.approx(
        fresh.get_potential_energy(), rel=1e-12)


def test_atoms_dataset_cache_follows_the_file(tmp_path):
    path = tmp_path / 'a.extxyz'
    label_structures(rattled_alloys(2, seed=1), EMT, path)
    first = AtomsDataset(path, root=tmp_path / 'cache')
    os.utime(path, ns=(1, 1))
    label_structures(rattled_alloys(3, seed=2), EMT, path)
    second = AtomsDataset(path, root=tmp_path / 'cache')
    assert len(first) == 2 and len(second) == 3


def test_atoms_dataset_errors_name_the_problem(tmp_path):
    with pytest.raises(FileNotFoundError, match='no such structure file'):
        AtomsDataset(tmp_path / 'missing.xyz')
    bad = tmp_path / 'bad.xyz'
    bad.write_text('3\n\nH 0 0 0\nXx 1 0 0\n')
    with pytest.raises(ValueError, match='ASE cannot read'):
        AtomsDataset(bad)


def test_labelling_failure_leaves_existing_file_intact(tmp_path):
    path = tmp_path / 'data.extxyz'
    label_structures(rattled_alloys(2, seed=1), EMT, path)
    before = path.read_bytes()

    class Failing(EMT):
        calls = 0

        def calculate(self, *args, **kwargs):
            Failing.calls += 1
            if Failing.calls > 1:
                raise RuntimeError('SCF did not converge')
            super().calculate(*args, **kwargs)

    with pytest.raises(ValueError, match='structure 1'):
        label_structures(rattled_alloys(3, seed=5), Failing(), path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ['data.extxyz']


def test_xtb_labels_of_molecule_snapshots(tmp_path):
    pytest.importorskip('tblite')
    snapshots = molecule_snapshots(['CCO', 'C=O'], per_molecule=2,
                                   rattle=0.03)
    path = tmp_path / 'xtb.db'
    label_structures(snapshots, lambda: make_calculator('xtb'), path)
    dataset = AtomsDataset(path)
    assert len(dataset) == 4
    # GFN2-xTB total energies of ethanol are around -310 eV.
    assert -320 < dataset[0].energy.item() < -300
    check = snapshots[3].copy()
    check.calc = make_calculator('xtb')
    assert dataset[3].energy.item() == pytest.approx(
        check.get_potential_energy(), rel=1e-10)
    assert dataset[3].forces.abs().max() > 0.1


def test_from_smiles_is_reproducible_and_chemical():
    data = from_smiles('CCO', seed=3)
    assert sorted(data.z.tolist()) == [1] * 6 + [6, 6, 8]
    again = from_smiles('CCO', seed=3)
    assert torch.equal(data.pos, again.pos)
    # MMFF-relaxed C-C and C-O bonds.
    dist = torch.cdist(data.pos, data.pos)
    carbons = (data.z == 6).nonzero().flatten()
    oxygen = (data.z == 8).nonzero().flatten()
    assert dist[carbons[0], carbons[1]].item() == pytest.approx(1.51,
                                                                 abs=0.03)
    assert dist[carbons, oxygen].min().item() == pytest.approx(1.42,
                                                               abs=0.03)


@pytest.mark.parametrize('smiles, match', [
    ('C1CC', 'cannot parse'), ('', 'expected a SMILES'),
    ('not a molecule', 'cannot parse')])
def test_from_smiles_errors(smiles, match):
    with pytest.raises(ValueError, match=match):
        from_smiles(smiles)


def test_from_rdkit_needs_a_3d_conformer():
    from rdkit import Chem
    from rdkit.Chem import AllChem

    mol = Chem.AddHs(Chem.MolFromSmiles('CC'))
    with pytest.raises(ValueError, match='no conformer'):
        from_rdkit(mol)
    AllChem.Compute2DCoords(mol)
    with pytest.raises(ValueError, match='2D'):
        from_rdkit(mol)
    AllChem.EmbedMolecule(mol, randomSeed=1)
    assert from_rdkit(mol).num_nodes == 8


@pytest.fixture(scope='module')
def qm9_slice(tmp_path_factory):
    return QM9(str(tmp_path_factory.mktemp('qm9')), max_molecules=500)


def test_qm9_fields_and_units(qm9_slice):
    methane = qm9_slice[0]
    assert methane.smiles == 'C' and methane.idx.item() == 1
    assert methane.z.tolist() == [6, 1, 1, 1, 1]
    # QM9's CSV row 1: U0 = -40.47893 Ha, HOMO = -0.3877 Ha, mu = 0 D.
    assert methane.U0.item() == pytest.approx(-40.47893 * HARTREE)
    assert methane.homo.item() == pytest.approx(-0.3877 * HARTREE)
    assert methane.U0.dtype == torch.float64
    bonds = (methane.pos[1:] - methane.pos[0]).norm(dim=-1)
    assert torch.allclose(bonds, torch.full((4, ), 1.0919), atol=2e-3)
    assert len(qm9_slice) == 500


def test_qm9_atomref_gives_atomization_energies(qm9_slice):
    ref = qm9_atomref('U0')
    methane = qm9_slice[0]
    atomization = methane.U0.item() - ref[methane.z].sum().item()
    # -40.47893 - (-37.846772 - 4 * 0.500273) Ha = -0.631066 Ha
    assert atomization == pytest.approx(-0.631066 * HARTREE, abs=1e-5)
    assert qm9_atomref('homo') is None
    assert ref.dtype == torch.float64 and ref.numel() == 101


def test_qm9_cache_is_reused(tmp_path):
    root = str(tmp_path / 'qm9')
    QM9(root, max_molecules=50)
    processed = [p for p in (tmp_path / 'qm9' / 'processed' / 'plain')
                 .iterdir() if p.name.startswith('qm9_')]
    mtime = processed[0].stat().st_mtime_ns
    QM9(root, max_molecules=50)
    assert processed[0].stat().st_mtime_ns == mtime


def test_qm9pack_folder_found_without_importing_it():
    import sys
    assert os.path.isfile(os.path.join(qm9pack_data_dir(), 'qm9_part1.csv'))
    assert 'qm9pack' not in sys.modules


def test_random_split_is_reproducible_and_disjoint():
    train, val, test = random_split(100, 60, 20, seed=4)
    again = random_split(100, 60, 20, seed=4)
    assert all(torch.equal(a, b)
               for a, b in zip((train, val, test), again, strict=True))
    together = torch.cat([train, val, test])
    assert together.unique().numel() == 100
    assert not torch.equal(train, random_split(100, 60, 20, seed=5)[0])
    with pytest.raises(ValueError, match='dataset has 100'):
        random_split(100, 90, 20)


@pytest.mark.slow
def test_full_qm9_processing(tmp_path):
    import time
    start = time.perf_counter()
    dataset = QM9(str(tmp_path / 'qm9'))
    elapsed = time.perf_counter() - start
    print(f'full QM9 processing: {elapsed:.1f} s')
    assert len(dataset) == 130_831
    assert dataset[-1].idx.item() == 133_885
    assert int(dataset._data.z.numel()) == 2_359_210


def test_qm9_split_keeps_one_test_set_for_every_size():
    from pyg_schnet.data import qm9_split
    reference = random_split(130831, 1000, 1000, 10000, seed=0)
    tests = []
    for n_train in (1000, 5000, 110000):
        train, val, test = qm9_split(130831, n_train, 1000, 10000, seed=0)
        assert len(train) == n_train and len(val) == 1000
        together = torch.cat([train, val, test])
        assert torch.unique(together).numel() == together.numel()
        tests.append(test)
    for test in tests:  # the main job's original test set, for every N
        assert torch.equal(test, reference[2])
    with pytest.raises(ValueError, match='at most 2000 validation'):
        qm9_split(130831, 1000, 5000, 10000)
