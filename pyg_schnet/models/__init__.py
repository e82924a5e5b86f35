"""Models: SchNet and DTNN, energies with forces and stress."""
from pyg_schnet.models.committee import Committee
from pyg_schnet.models.dtnn import DTNN
from pyg_schnet.models.io import MODELS, build_model, load_model, save_model
from pyg_schnet.models.original import load_original_schnet
from pyg_schnet.models.potential import AtomisticModel, edge_vectors
from pyg_schnet.models.pretrained import (
    list_pretrained,
    load_pretrained,
    pretrained_card,
)
from pyg_schnet.models.schnet import SchNet

__all__ = [
    'MODELS',
    'AtomisticModel',
    'Committee',
    'DTNN',
    'SchNet',
    'build_model',
    'edge_vectors',
    'list_pretrained',
    'load_model',
    'load_original_schnet',
    'load_pretrained',
    'pretrained_card',
    'save_model',
]
