r"""A pyg_schnet model as an OpenMM force: ``openmm.PythonForce`` (OpenMM
8.6+, from PyPI; ``openmmtorch`` from PyPI links a CUDA torch and cannot
load beside the CPU build), for any integrator, ``RPMDIntegrator``
included, on OpenMM's CPU and Reference platforms.

OpenMM works in nm, kJ/mol, ps and amu; the model in Å and eV. The
conversion happens here and nowhere else:

.. math::
    \mathbf{r}_{\text{Å}} = 10\, \mathbf{r}_{\text{nm}}, \qquad
    E_{\text{kJ/mol}} = 96.485\ldots\, E_{\text{eV}}, \qquad
    \mathbf{F}_{\text{kJ/(mol nm)}} = 964.85\ldots\,
    \mathbf{F}_{\text{eV/Å}},

with the factor :data:`EV_TO_KJ_PER_MOL` from ASE's CODATA constants.
"""
import copy
from typing import Optional, Sequence

import numpy as np
import torch
from ase import units

from pyg_schnet.graph import check_distances, check_structure
from pyg_schnet.md.graph import VerletGraph
from pyg_schnet.models import AtomisticModel, edge_vectors

#: 1 eV in kJ/mol.
EV_TO_KJ_PER_MOL = 1.0 / (units.kJ / units.mol)
#: 1 nm in Å.
NM_TO_ANGSTROM = 10.0


class ModelEvaluator:
    r"""Energy (kJ/mol) and forces (kJ/(mol nm)) of a model for positions
    in nm: the function an ``openmm.PythonForce`` calls. It keeps its own
    copy of the model (in :obj:`dtype`, evaluation mode) and a reused
    Verlet graph, and checks every structure as the ASE calculator does.

    Args:
        model (AtomisticModel): The model.
        numbers (sequence of int): Atomic numbers of the particles.
        cell (numpy.ndarray, optional): A periodic cell :obj:`[3, 3]` in
            Å (row vectors); :obj:`None` for a molecule. (default:
            :obj:`None`)
        dtype (torch.dtype, optional): (default: :obj:`torch.float64`)
        skin (float, optional): Skin of the reused graph in Å.
            (default: :obj:`0.5`)
    """
    def __init__(self, model: AtomisticModel, numbers: Sequence[int],
                 cell: Optional[np.ndarray] = None,
                 dtype: torch.dtype = torch.float64, skin: float = 0.5):
        self.model = copy.deepcopy(model).to(dtype).eval()
        self.dtype = dtype
        self.z = torch.as_tensor(np.asarray(numbers), dtype=torch.long)
        self.batch = torch.zeros(self.z.numel(), dtype=torch.long)
        self.cell = None if cell is None else torch.as_tensor(
            np.asarray(cell), dtype=dtype).view(1, 3, 3)
        self.pbc = None if cell is None else torch.ones(1, 3,
                                                        dtype=torch.bool)
        self.graph = VerletGraph(self.model.cutoff, skin)
        self.calls = 0

    def energy_forces(self, positions_nm: np.ndarray) -> tuple:
        r"""Energy (kJ/mol) and forces :obj:`[N, 3]` (kJ/(mol nm)) at
        :obj:`positions_nm` :obj:`[N, 3]`."""
        pos = torch.as_tensor(np.asarray(positions_nm) * NM_TO_ANGSTROM,
                              dtype=self.dtype)
        check_structure(self.z, pos, max_z=self.model.max_z)
        edge_index, offsets = self.graph(self.z, pos, self.batch, 1,
                                         self.cell, self.pbc)
        cell = self.cell if offsets is not None else None
        with torch.no_grad():
            distance = edge_vectors(pos, edge_index, self.batch, cell,
                                    offsets).norm(dim=-1)
        check_distances(edge_index, distance, self.model.min_distance)
        out = self.model.evaluate(self.z, pos, edge_index, self.batch, 1,
                                  cell, offsets, symmetric=True,
                                  forces=True)
        self.calls += 1
        energy = float(out['energy'][0]) * EV_TO_KJ_PER_MOL
        forces = out['forces'].double().numpy() * (EV_TO_KJ_PER_MOL *
                                                   NM_TO_ANGSTROM)
        return energy, forces

    def __call__(self, state) -> tuple:
        import openmm.unit as unit
        positions = state.getPositions(asNumpy=True).value_in_unit(
            unit.nanometer)
        energy, forces = self.energy_forces(positions)
        return (energy * unit.kilojoule_per_mole,
                forces * unit.kilojoule_per_mole / unit.nanometer)


def openmm_force(model: AtomisticModel, numbers: Sequence[int],
                 cell: Optional[np.ndarray] = None,
                 dtype: torch.dtype = torch.float64):
    r"""An ``openmm.PythonForce`` of :obj:`model` for particles of atomic
    numbers :obj:`numbers` (add it to a ``System`` whose particles have
    those atoms' masses, e.g. from :func:`openmm_system`). With
    :obj:`cell` (Å) it is periodic; the ``System``'s box must be the same
    cell.

    Raises:
        ImportError: if OpenMM (8.6 or newer) is not installed
            (``pip install -e '.[openmm]'``).
    """
    try:
        import openmm
    except ImportError as e:
        raise ImportError("OpenMM is not installed (pip install -e "
                          "'.[openmm]')") from e
    if not hasattr(openmm, 'PythonForce'):
        raise ImportError(f'openmm.PythonForce needs OpenMM 8.6 or newer '
                          f'(installed: {openmm.__version__})')
    force = openmm.PythonForce(ModelEvaluator(model, numbers, cell, dtype))
    force.setUsesPeriodicBoundaryConditions(cell is not None)
    return force


def openmm_system(model: AtomisticModel, atoms,
                  dtype: torch.dtype = torch.float64):
    r"""An ``openmm.System`` of :obj:`atoms` (ASE; their masses in amu,
    their cell when periodic) with the model as its only force."""
    import openmm
    import openmm.unit as unit

    system = openmm.System()
    for mass in atoms.get_masses():
        system.addParticle(float(mass) * unit.amu)
    periodic = bool(atoms.pbc.any())
    if periodic:
        if not atoms.pbc.all():
            raise ValueError('OpenMM boxes are periodic in all three '
                             'directions; this structure is not')
        a, b, c = (openmm.Vec3(*(row / NM_TO_ANGSTROM)) for row in
                   np.asarray(atoms.cell))
        system.setDefaultPeriodicBoxVectors(a, b, c)
    system.addForce(openmm_force(model, atoms.numbers,
                                 np.asarray(atoms.cell) if periodic else None,
                                 dtype))
    return system
