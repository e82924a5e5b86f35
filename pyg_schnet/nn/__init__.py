"""Layers: each one concept of the SchNet/DTNN papers, usable with any
other PyG layer."""
from pyg_schnet.nn.activation import ShiftedSoftplus, shifted_softplus
from pyg_schnet.nn.cfconv import CFConv, SchNetInteraction
from pyg_schnet.nn.cutoff import CosineCutoff, StepCutoff
from pyg_schnet.nn.dtnn import DTNNInteraction
from pyg_schnet.nn.pairs import pair_messages
from pyg_schnet.nn.properties import (
    PROPERTY_HEADS,
    Dipole,
    Polarizability,
    SpatialExtent,
)
from pyg_schnet.nn.rbf import GaussianRBF
from pyg_schnet.nn.readout import Atomwise

__all__ = [
    'Atomwise',
    'CFConv',
    'CosineCutoff',
    'DTNNInteraction',
    'Dipole',
    'GaussianRBF',
    'PROPERTY_HEADS',
    'Polarizability',
    'SchNetInteraction',
    'ShiftedSoftplus',
    'SpatialExtent',
    'StepCutoff',
    'pair_messages',
    'shifted_softplus',
]
