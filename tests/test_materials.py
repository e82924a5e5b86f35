"""Crystals across the periodic table: the prototype generator, CHGNet
labels (where chgnet is installed) and the embedding study's data path."""
import json

import numpy as np
import pytest
from ase.neighborlist import neighbor_list

from pyg_schnet.data import prototype_crystals
from pyg_schnet.data.labelling import (
    PROTOTYPE_ELEMENTS,
    PROTOTYPES,
    _bond,
    prototype_crystal,
)


def test_prototypes_have_their_nearest_neighbours_at_the_bond_length():
    for kind in PROTOTYPES[1]:
        atoms = prototype_crystal(kind, ['Cu'])
        d = neighbor_list('d', atoms, 4.0).min()
        assert d == pytest.approx(_bond('Cu', 'Cu'), rel=1e-9), kind
    for kind in PROTOTYPES[2]:
        atoms = prototype_crystal(kind, ['Na', 'Cl'])
        d = neighbor_list('d', atoms, 5.0).min()
        assert d == pytest.approx(_bond('Na', 'Cl'), rel=1e-6), kind
    perovskite = prototype_crystal('perovskite', ['Sr', 'Ti', 'O'])
    assert perovskite.get_chemical_formula() == 'O3SrTi'


def test_prototype_crystals_cover_the_table_without_close_contacts():
    structures = prototype_crystals(400, seed=1)
    elements = {s for a in structures for s in a.get_chemical_symbols()}
    assert len(PROTOTYPE_ELEMENTS) == 61
    assert elements == set(PROTOTYPE_ELEMENTS)
    kinds = {a.info['prototype'] for a in structures}
    assert kinds == {k for v in PROTOTYPES.values() for k in v}
    for atoms in structures:
        assert atoms.pbc.all() and atoms.get_volume() > 0
        # Nothing closer than 0.5 Å (the generator keeps every pair above
        # 70 % of its distance in the prototype).
        assert len(neighbor_list('d', atoms, 0.5)) == 0, \
            atoms.get_chemical_formula()
    again = prototype_crystals(20, seed=1)
    assert all(np.array_equal(a.positions, b.positions)
               for a, b in zip(structures[:20], again, strict=True))


def test_chgnet_labels_equal_chgnets_calculator(tmp_path):
    pytest.importorskip('chgnet', reason="CHGNet is optional: pip install "
                        "-e '.[materials]'")
    import warnings

    from chgnet.model.dynamics import CHGNetCalculator

    from pyg_schnet.cli import main
    from pyg_schnet.data import AtomsDataset, chgnet_labels
    structures = prototype_crystals(6, seed=2)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        labelled = chgnet_labels(structures, batch_size=4)
        calc = CHGNetCalculator(verbose=False)
        for atoms, label in zip(structures, labelled, strict=True):
            atoms = atoms.copy()
            atoms.calc = calc
            assert label.get_potential_energy() == pytest.approx(
                atoms.get_potential_energy(), abs=1e-4)
            np.testing.assert_allclose(label.get_forces(),
                                       atoms.get_forces(), atol=1e-4)
            np.testing.assert_allclose(label.get_stress(),
                                       atoms.get_stress(), atol=1e-5)
    out = tmp_path / 'crystals.extxyz'
    assert main(['label', '--calculator', 'chgnet', '--prototypes', '6',
                 '--seed', '2', '--out', str(out)]) == 0
    card = json.loads((tmp_path / 'crystals.extxyz.card.json').read_text())
    assert card['structures'] == 6 and 'CHGNet' in card['calculator']
    dataset = AtomsDataset(str(out))
    assert {'energy', 'forces', 'stress'} <= set(dataset[0].keys())
