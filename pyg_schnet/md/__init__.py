"""Molecular dynamics with the learned potential: an ASE calculator and a
batched ring-polymer MD engine (P = 1 is classical MD). Units: Å, eV, eV/Å,
amu, fs at the interface (ASE's units inside)."""
from pyg_schnet.md.calculator import SchNetCalculator
from pyg_schnet.md.graph import VerletGraph
from pyg_schnet.md.rpmd import RingPolymerMD, mode_frequencies, normal_modes

__all__ = [
    'RingPolymerMD',
    'SchNetCalculator',
    'VerletGraph',
    'mode_frequencies',
    'normal_modes',
]
