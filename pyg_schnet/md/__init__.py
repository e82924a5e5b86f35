"""Molecular dynamics with the learned potential: an ASE calculator and a
batched ring-polymer MD engine (P = 1 is classical MD). Units: Å, eV, eV/Å,
amu, fs at the interface (ASE's units inside).

The physics is in :mod:`pyg_schnet.md.ring_polymer` (pure functions of
tensors), the driver in :mod:`pyg_schnet.md.rpmd`, the files of a run in
:mod:`pyg_schnet.md.output`."""
from pyg_schnet.md.calculator import CommitteeCalculator, SchNetCalculator
from pyg_schnet.md.graph import VerletGraph
from pyg_schnet.md.ring_polymer import mode_frequencies, normal_modes
from pyg_schnet.md.rpmd import MDInterrupted, MDRunError, RingPolymerMD

__all__ = [
    'CommitteeCalculator',
    'MDInterrupted',
    'MDRunError',
    'RingPolymerMD',
    'SchNetCalculator',
    'VerletGraph',
    'mode_frequencies',
    'normal_modes',
]
