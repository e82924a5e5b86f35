"""Graph construction: radius graphs of molecules and periodic structures."""
from pyg_schnet.graph.build import build_graph, check_geometry
from pyg_schnet.graph.pairs import canonical_mask, half_pairs
from pyg_schnet.graph.periodic import complete_cell, periodic_radius_graph
from pyg_schnet.graph.radius import radius_graph
from pyg_schnet.graph.transforms import PeriodicRadiusGraph
from pyg_schnet.graph.validation import (
    MAX_Z,
    MIN_DISTANCE,
    check_cell,
    check_distances,
    check_structure,
)

__all__ = [
    'MAX_Z',
    'MIN_DISTANCE',
    'PeriodicRadiusGraph',
    'build_graph',
    'canonical_mask',
    'check_cell',
    'check_distances',
    'check_geometry',
    'check_structure',
    'complete_cell',
    'half_pairs',
    'periodic_radius_graph',
    'radius_graph',
]
