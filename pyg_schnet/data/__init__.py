"""Structures to :class:`~torch_geometric.data.Data`: ASE, RDKit, files,
QM9, and reference labels from ASE calculators."""
from pyg_schnet.data.ase import from_ase, to_ase
from pyg_schnet.data.files import (
    AtomsDataset,
    check_labels,
    read_atoms,
    read_structures,
)
from pyg_schnet.data.labelling import (
    chgnet_labels,
    label_structures,
    make_calculator,
    molecule_snapshots,
    prototype_crystals,
    rattled_alloys,
)
from pyg_schnet.data.qm9 import QM9, QM9_TARGETS, qm9_atomref
from pyg_schnet.data.rdkit import from_rdkit, from_smiles
from pyg_schnet.data.splits import qm9_split, random_split
from pyg_schnet.data.structure import atomistic_data

__all__ = [
    'AtomsDataset',
    'QM9',
    'QM9_TARGETS',
    'atomistic_data',
    'check_labels',
    'from_ase',
    'from_rdkit',
    'from_smiles',
    'chgnet_labels',
    'label_structures',
    'make_calculator',
    'molecule_snapshots',
    'prototype_crystals',
    'qm9_atomref',
    'qm9_split',
    'random_split',
    'rattled_alloys',
    'read_atoms',
    'read_structures',
    'to_ase',
]
