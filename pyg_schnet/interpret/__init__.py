"""Looking inside a trained model: local chemical potentials with a probe
atom, element embeddings and atomic energies. Units: Å, eV."""
from pyg_schnet.interpret.embeddings import (
    GROUPS,
    PERIODS,
    element_embeddings,
    embedding_scores,
)
from pyg_schnet.interpret.plots import (
    plot_atomic_energies,
    plot_embeddings,
    plot_potential,
)
from pyg_schnet.interpret.potential import (
    atomic_energies,
    distance_sum_surface,
    geometric_median,
    inverse_distance_surface,
    local_potential,
    molecule_layers,
    vdw_surface,
)

__all__ = [
    'GROUPS',
    'PERIODS',
    'atomic_energies',
    'distance_sum_surface',
    'element_embeddings',
    'embedding_scores',
    'geometric_median',
    'inverse_distance_surface',
    'local_potential',
    'molecule_layers',
    'plot_atomic_energies',
    'plot_embeddings',
    'plot_potential',
    'vdw_surface',
]
