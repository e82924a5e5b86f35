"""Models: SchNet and DTNN, energies with forces and stress."""
from pyg_schnet.models.dtnn import DTNN
from pyg_schnet.models.potential import AtomisticModel, edge_vectors
from pyg_schnet.models.schnet import SchNet

__all__ = ['AtomisticModel', 'DTNN', 'SchNet', 'edge_vectors']
