r"""Batched molecular dynamics and ring-polymer molecular dynamics (RPMD):
the driver. The physics is in :mod:`pyg_schnet.md.ring_polymer` (pure
functions of tensors) and the files in :mod:`pyg_schnet.md.output`; this
module owns the state, the model's copy, the input checks and the watch
for exploding dynamics."""
import copy
import math
import sys
from typing import Dict, List, Optional, Sequence, Union

import numpy as np
import torch
from ase import Atoms, units
from torch import Tensor

from pyg_schnet.graph import check_distances, check_structure
from pyg_schnet.io import disk_full_error
from pyg_schnet.md.constraints import free_atoms_mask
from pyg_schnet.md.graph import VerletGraph
from pyg_schnet.md.output import MDOutput
from pyg_schnet.md.ring_polymer import (
    HBAR,
    bead_kinetic,
    centroid_kinetic,
    centroid_virial_kinetic,
    force_step,
    free_ring_polymer_step,
    kinetic_temperature,
    mode_frequencies,
    normal_modes,
    pile_friction,
    primitive_kinetic,
    ring_frequency,
    ring_polymer_hamiltonian,
    thermal_momenta,
    thermostat_step,
)
from pyg_schnet.models import edge_vectors
from pyg_schnet.models.memory import check_memory
from pyg_schnet.threads import check_threads_argument, set_threads

__all__ = ['HBAR', 'MDRunError', 'MDInterrupted', 'RingPolymerMD',
           'mode_frequencies', 'normal_modes']

# Random normal draws per system generated at once (see _noise).
_NOISE_BLOCK = 64

#: Steps between two checks of the blow-up watch (also run at every
#: written frame).
WATCH_INTERVAL = 10


class MDRunError(RuntimeError):
    r"""An MD run stopped before its last step: exploding dynamics, a
    non-finite state, or an error in the model. :attr:`partial_files` are
    the ``.partial`` files holding what was written up to then (the final
    file names were not touched)."""
    def __init__(self, message: str, partial_files: Sequence[str] = ()):
        super().__init__(message)
        self.partial_files = list(partial_files)


class MDInterrupted(KeyboardInterrupt):
    r"""Ctrl-C during :meth:`RingPolymerMD.run`; :attr:`partial_files` as
    in :class:`MDRunError`."""
    def __init__(self, message: str, partial_files: Sequence[str] = ()):
        super().__init__(message)
        self.partial_files = list(partial_files)


class RingPolymerMD:
    r"""Molecular dynamics of :math:`S` systems of :math:`P` beads each,
    all :math:`S \cdot P` structures evaluated as one batch (one model call
    per step), with a graph reused between rebuilds (:class:`VerletGraph`).

    State: positions :attr:`q` and momenta :attr:`p` :obj:`[S, P, N, 3]`
    (Å and amu·Å per ASE time unit). Units are ASE's throughout (eV, Å,
    amu, :obj:`ase.units.fs`); :obj:`timestep`, :obj:`tau0` are given in
    fs and :obj:`temperature` in K.

    One step (velocity Verlet with the exact free ring-polymer propagation
    in normal-mode coordinates, thermostat steps around it):
    :math:`O(\Delta t/2)\,B(\Delta t/2)\,A(\Delta t)\,B(\Delta t/2)\,
    O(\Delta t/2)`, where :math:`B` adds the physical forces to the bead
    momenta (:func:`~pyg_schnet.md.ring_polymer.force_step`), :math:`A`
    rotates each normal mode :math:`k` as a harmonic oscillator of
    frequency :math:`\omega_k = 2\omega_P\sin(k\pi/P)` (free flight for
    :math:`k = 0`; :func:`~pyg_schnet.md.ring_polymer.free_ring_polymer_step`)
    and :math:`O` is the thermostat
    (:func:`~pyg_schnet.md.ring_polymer.thermostat_step`):

    * :obj:`"none"`: NVE; :math:`H_P` is conserved.
    * :obj:`"pile"`: PILE-L, Langevin on every normal mode at the bead
      temperature :math:`P T`, critically damped internal modes
      :math:`\gamma_k = 2\omega_k` and the centroid with
      :math:`\gamma_0 = 1/\tau_0`.
    * :obj:`"langevin"`: the same for :math:`P = 1`, a Langevin
      thermostat of time constant :math:`\tau_0`.

    The engine works on its own copy of the model, moved to
    :obj:`device` and :obj:`dtype` and put in evaluation mode; the caller's
    model is not changed.

    Input is checked before anything runs: unknown elements (atomic numbers
    outside the model's :math:`1..Z_{\max}`), non-finite positions,
    overlapping atoms (closer than the model's :obj:`min_distance`,
    0.1 Å), singular cells, constraints other than
    :class:`ase.constraints.FixAtoms` (which is honoured: fixed atoms keep
    their positions in every bead, get no thermostat noise and count no
    degrees of freedom), and the memory the batch would need (refused with
    the estimate when it exceeds the memory available).

    The blow-up watch (every :data:`WATCH_INTERVAL` steps and at every
    written frame) stops the run with :class:`MDRunError` when positions,
    forces or energies stop being finite, when the conserved quantity
    (:math:`H_P` plus the energy the thermostat exchanged; constant up to
    the integration error for every thermostat) has drifted from its start
    by more than :obj:`max_drift` eV per atom and bead, or when the
    temperature exceeds :obj:`max_temperature`.

    Args:
        model: An :class:`~pyg_schnet.models.AtomisticModel`, or any module
            with :obj:`cutoff` (Å) and its :meth:`evaluate` interface.
        atoms (ase.Atoms or list of ase.Atoms): The initial structure, or
            one per system (same atoms in the same order). Beads start at
            the atoms' positions.
        beads (int, optional): :math:`P`. (default: :obj:`1`)
        temperature (float, optional): :math:`T` in K. (default:
            :obj:`300.0`)
        timestep (float, optional): :math:`\Delta t` in fs.
            (default: :obj:`0.5`)
        thermostat (str, optional): :obj:`"none"`, :obj:`"langevin"` or
            :obj:`"pile"`. (default: :obj:`"pile"`)
        tau0 (float, optional): Centroid thermostat time constant in fs.
            (default: :obj:`100.0`)
        systems (int, optional): :math:`S` copies of a single
            :obj:`atoms`. (default: :obj:`1`)
        seed (int or list of int, optional): Seeds of the systems'
            random numbers (initial momenta, thermostat noise); an int
            gives :obj:`seed + s` to system :math:`s`, so a batched run
            reproduces separate runs. (default: :obj:`0`)
        device (str or torch.device, optional): Where to compute.
            (default: :obj:`"cpu"`)
        dtype (torch.dtype, optional): The precision of the state and of
            the model's copy. (default: :obj:`torch.float64`)
        skin (float, optional): Skin of the reused graph in Å.
            (default: :obj:`0.5`)
        max_drift (float, optional): Largest drift of the conserved
            quantity, in eV per atom and bead, before the run is stopped;
            :obj:`None` turns the check off. (default: :obj:`0.1`, about
            4 :math:`k_B T` per atom at 300 K)
        max_temperature (float, optional): Highest instantaneous
            temperature in K before the run is stopped; :obj:`None`
            (default) means :math:`T \max(10, 1 + 30\sqrt{2/f})` with
            :math:`f` the degrees of freedom of a system's beads (a few
            atoms' temperature fluctuates more), :obj:`math.inf` turns it
            off.
        max_force_std (float, optional): With a
            :class:`~pyg_schnet.models.committee.Committee` as the model:
            warn (once) when an atom's force deviation passes this many
            eV/Å. The committee's deviations are observables (and log
            columns) either way. (default: :obj:`None`)
        tune_malloc (bool, optional): Call
            :func:`pyg_schnet.allocator.tune_allocator`, which changes
            glibc's ``malloc`` settings *for the whole process* (large
            graphs get faster, peak memory higher); :obj:`False` leaves
            them alone. (default: :obj:`True`)
        threads (int or str, optional): torch's threads *for the whole
            process*, set once the graph is built: :obj:`"rule"` the
            package's measured rule (:func:`pyg_schnet.threads.set_threads`:
            ``OMP_NUM_THREADS`` if set, else one thread below 1,000 pairs
            per call or on a busy machine, the free cores otherwise), a
            number, or :obj:`None` to leave torch's setting alone.
            (default: :obj:`"rule"`)
    """
    def __init__(self, model, atoms: Union[Atoms, Sequence[Atoms]],
                 beads: int = 1, temperature: float = 300.0,
                 timestep: float = 0.5, thermostat: str = 'pile',
                 tau0: float = 100.0, systems: int = 1,
                 seed: Union[int, Sequence[int]] = 0,
                 device: Union[str, torch.device] = 'cpu',
                 dtype: torch.dtype = torch.float64, skin: float = 0.5,
                 max_drift: Optional[float] = 0.1,
                 max_temperature: Optional[float] = None,
                 max_force_std: Optional[float] = None,
                 tune_malloc: bool = True,
                 threads: Union[int, str, None] = 'rule'):
        structures = [atoms] * systems if isinstance(atoms, Atoms) else \
            list(atoms)
        threads = check_threads_argument(threads)
        self._check_arguments(structures, atoms, systems, beads,
                              thermostat, temperature, timestep, tau0,
                              dtype, max_drift, max_temperature)
        if tune_malloc:
            from pyg_schnet.allocator import tune_allocator
            tune_allocator()
        self.device = torch.device(device)
        if self.device.type == 'cuda' and not torch.cuda.is_available():
            raise ValueError('device cuda was asked for, but torch sees no '
                             'CUDA GPU')
        self.dtype = dtype
        self.model = copy.deepcopy(model).to(device=self.device,
                                             dtype=dtype).eval()
        first = structures[0]
        self.S, self.P, self.N = len(structures), beads, len(first)
        self.temperature = float(temperature)
        self.dt = float(timestep) * units.fs
        self.thermostat = thermostat
        self.tau0 = float(tau0) * units.fs
        seeds = [seed + s for s in range(self.S)] if isinstance(seed, int) \
            else list(seed)
        if len(seeds) != self.S:
            raise ValueError(f'{len(seeds)} seeds for {self.S} systems')
        kwargs = dict(device=self.device, dtype=dtype)
        self.z = torch.as_tensor(first.numbers, dtype=torch.long,
                                 device=self.device)
        q = torch.as_tensor(np.stack([a.positions for a in structures]),
                            **kwargs)
        for s in range(self.S):
            where = f'structure {s}: ' if self.S > 1 else ''
            try:
                check_structure(self.z, q[s], max_z=getattr(
                    self.model, 'max_z', 118))
            except ValueError as e:
                raise ValueError(f'{where}{e}') from None
        self.masses = torch.as_tensor(first.get_masses(), **kwargs)
        self.atoms = [a.copy() for a in structures]
        self.free = free_atoms_mask(structures).to(self.device)
        self.dof = 3 * int(self.free.sum())
        self.q = q.unsqueeze(1).repeat(1, self.P, 1, 1)
        # Fixed atoms stay exactly where they are, in every bead.
        self._q_fixed = self.q.clone()
        self.periodic = bool(first.pbc.any())
        self.cell = torch.as_tensor(
            np.stack([np.asarray(a.cell) for a in structures]), **kwargs)
        self.pbc = torch.as_tensor(np.stack([a.pbc for a in structures]),
                                   device=self.device)
        # Ring polymer constants (ASE units).
        self.beta = 1.0 / (units.kB * self.temperature)
        self.beta_p = self.beta / self.P
        self.omega_p = ring_frequency(self.P, self.temperature)
        self.C = normal_modes(self.P).to(**kwargs)
        self.omega_k = mode_frequencies(self.P, self.omega_p).to(**kwargs)
        self.gamma = pile_friction(self.omega_k, self.tau0)
        self.max_drift = max_drift
        self.max_force_std = max_force_std
        self._warned_std = False
        self._energy_std: Optional[Tensor] = None
        self._forces_std: Optional[Tensor] = None
        dof_total = max(self.dof * self.P, 1)
        self.max_temperature = self.temperature * max(
            10.0, 1.0 + 30.0 * math.sqrt(2.0 / dof_total)) \
            if max_temperature is None else float(max_temperature)
        self.graph = VerletGraph(self.model.cutoff, skin)
        self.batch = torch.arange(self.S * self.P, device=self.device) \
            .repeat_interleave(self.N)
        self._check_start(structures)
        self.generators = [torch.Generator(device='cpu').manual_seed(int(s))
                           for s in seeds]
        self._noise_left = 0
        self._noise_block: Optional[Tensor] = None
        self.p = thermal_momenta(self.masses, self.beta_p, self._noise(),
                                 self.free)
        self.step_count = 0
        self.thermostat_energy = torch.zeros(self.S, **kwargs)
        if threads is not None:  # the work per call is known now
            set_threads(None if threads == 'rule' else threads, self.pairs)
        self._forces, self._potential = self._evaluate(self.q)
        self._conserved_start = self.observables()['conserved']
        self.watch()

    @staticmethod
    def _check_arguments(structures, atoms, systems, beads, thermostat,
                         temperature, timestep, tau0, dtype, max_drift,
                         max_temperature) -> None:
        if not structures:
            raise ValueError('no structure given')
        if not isinstance(atoms, Atoms) and systems not in (1,
                                                            len(structures)):
            raise ValueError(f"'systems' ({systems}) differs from the number "
                             f'of structures given ({len(structures)})')
        if isinstance(systems, bool) or not isinstance(systems, int) or \
                systems < 1:
            raise ValueError(f"'systems' must be a positive integer (got "
                             f'{systems!r})')
        first = structures[0]
        for k, other in enumerate(structures):
            if not isinstance(other, Atoms):
                raise ValueError(f'structure {k} is not an ase.Atoms (got '
                                 f'{type(other).__name__})')
            if not np.array_equal(other.numbers, first.numbers):
                raise ValueError(f'structure {k} has other atoms than '
                                 f'structure 0: the systems of one batch '
                                 f'must be the same atoms')
        if len(first) == 0:
            raise ValueError('the structure has no atoms')
        if isinstance(beads, bool) or not isinstance(beads, int) or beads < 1:
            raise ValueError(f"'beads' must be a positive integer (got "
                             f'{beads!r})')
        if thermostat not in ('none', 'langevin', 'pile'):
            raise ValueError(f"'thermostat' must be 'none', 'langevin' or "
                             f"'pile' (got {thermostat!r})")
        if thermostat == 'langevin' and beads != 1:
            raise ValueError("the 'langevin' thermostat is for P = 1; use "
                             "'pile' (PILE-L) for ring polymers")
        for name, value in (('temperature', temperature),
                            ('timestep', timestep), ('tau0', tau0)):
            if not (isinstance(value, (int, float)) and
                    math.isfinite(value) and value > 0):
                raise ValueError(f"'{name}' must be a positive number (got "
                                 f'{value!r})')
        if dtype not in (torch.float32, torch.float64):
            raise ValueError(f"'dtype' must be torch.float32 or "
                             f'torch.float64 (got {dtype})')
        for name, value in (('max_drift', max_drift),
                            ('max_temperature', max_temperature)):
            if value is not None and not value > 0:
                raise ValueError(f"'{name}' must be positive or None (got "
                                 f'{value!r})')

    def _check_start(self, structures: List[Atoms]) -> None:
        r"""Memory, overlaps and cells of the starting structures, before
        the first model call."""
        num = self.S * self.P
        cell, pbc = self._cells()
        one = torch.zeros(self.N, dtype=torch.long, device=self.device)
        probe = VerletGraph(self.graph.cutoff, self.graph.skin)
        pairs = 0
        for s in range(self.S):
            where = f'structure {s}: ' if self.S > 1 else ''
            try:
                edge_index, offsets = probe(
                    self.z, self.q[s, 0], one, 1,
                    None if cell is None else cell[s * self.P:s * self.P + 1],
                    None if pbc is None else pbc[s * self.P:s * self.P + 1])
            except ValueError as e:  # a singular cell
                raise ValueError(f'{where}{e}') from None
            pairs = max(pairs, edge_index.size(1))
            dist = edge_vectors(self.q[s, 0], edge_index, one,
                                None if offsets is None else
                                cell[s * self.P:s * self.P + 1],
                                offsets).norm(dim=-1)
            try:
                check_distances(edge_index, dist, getattr(
                    self.model, 'min_distance', 0.1))
            except ValueError as e:
                raise ValueError(f'{where}{e}') from None
        #: Pairs per model call (all systems and beads), at the start.
        self.pairs = num * pairs
        check_memory(self.model, num * self.N, num * pairs, self.dtype,
                     self.device,
                     f'{self.S} systems x {self.P} beads x {self.N} atoms')

    # -- pieces of a step ----------------------------------------------------
    def _noise(self) -> Tensor:
        r"""Standard normal numbers :obj:`[S, P, N, 3]`. Each system draws
        from its own generator, in blocks of :data:`_NOISE_BLOCK` draws at
        a time (one call per system per block instead of per step), so
        its numbers are the same whether it runs alone or in a batch."""
        if self._noise_left == 0:
            block = torch.stack([
                torch.randn(_NOISE_BLOCK, self.P, self.N, 3, generator=g,
                            dtype=torch.float64)
                for g in self.generators], dim=1)
            self._noise_block = block.to(device=self.device,
                                         dtype=self.dtype)
            self._noise_left = _NOISE_BLOCK
        self._noise_left -= 1
        return self._noise_block[_NOISE_BLOCK - 1 - self._noise_left]

    def _cells(self):
        if self.periodic or bool((self.cell != 0).any()):
            return (self.cell.repeat_interleave(self.P, dim=0),
                    self.pbc.repeat_interleave(self.P, dim=0))
        return None, None

    def _evaluate(self, q: Tensor):
        pos = q.reshape(-1, 3)
        num = self.S * self.P
        z = self.z.repeat(num)
        cell, pbc = self._cells()
        edge_index, offsets = self.graph(z, pos, self.batch, num, cell, pbc)
        out = self.model.evaluate(z, pos, edge_index, self.batch, num,
                                  cell if offsets is not None else None,
                                  offsets, symmetric=True, forces=True)
        forces = out['forces'].to(self.dtype).view(self.S, self.P, self.N, 3)
        potential = out['energy'].to(self.dtype).view(self.S, self.P)
        if 'forces_std' in out:  # a committee
            self._energy_std = out['energy_std'].detach().to(
                self.dtype).view(self.S, self.P)
            self._forces_std = out['forces_std'].detach().to(
                self.dtype).view(self.S, self.P, self.N)
        forces = forces * self.free.view(1, 1, -1, 1).to(self.dtype)
        return forces.detach(), potential.detach()

    def _thermostat(self, half_dt: float) -> None:
        if self.thermostat == 'none':
            return
        before = bead_kinetic(self.p, self.masses).sum(dim=1)
        p = thermostat_step(self.p, self.masses, self.gamma, self.beta_p,
                            half_dt, self._noise(), self.C)
        self.p = p * self.free.view(1, 1, -1, 1).to(p.dtype)
        self.thermostat_energy += before - bead_kinetic(
            self.p, self.masses).sum(dim=1)

    def step(self) -> None:
        r"""One time step :math:`O\,B\,A\,B\,O`; every
        :data:`WATCH_INTERVAL` steps the blow-up watch (:meth:`watch`)."""
        half = 0.5 * self.dt
        self._thermostat(half)
        self.p = force_step(self.p, self._forces, half)
        self.q, self.p = free_ring_polymer_step(self.q, self.p, self.masses,
                                                self.omega_k, self.dt, self.C)
        if self.dof < 3 * self.N:  # undo the round-off of the modes
            self.q = torch.where(self.free.view(1, 1, -1, 1), self.q,
                                 self._q_fixed)
        self._forces, self._potential = self._evaluate(self.q)
        self.p = force_step(self.p, self._forces, half)
        self._thermostat(half)
        self.step_count += 1
        if self.step_count % WATCH_INTERVAL == 0:
            self.watch()

    def watch(self) -> None:
        r"""The blow-up watch: raises :class:`MDRunError` (with the step,
        the system and the quantity) if the state is not finite, the
        conserved quantity drifted by more than :attr:`max_drift` eV per
        atom and bead, or the temperature passed
        :attr:`max_temperature`."""
        at = f'at step {self.step_count} ({self.time_fs:g} fs)'
        for name, value in (('positions', self.q), ('momenta', self.p),
                            ('forces', self._forces),
                            ('energies', self._potential)):
            if not bool(torch.isfinite(value).all()):
                s = int((~torch.isfinite(value)).reshape(self.S, -1)
                        .any(dim=1).nonzero()[0])
                raise MDRunError(f'the {name} of system {s} are no longer '
                                 f'finite {at}: the dynamics blew up (try a '
                                 f'smaller timestep)')
        obs = self.observables()
        if self.max_drift is not None:
            drift = (obs['conserved'] - self._conserved_start).abs() / (
                self.N * self.P)
            if bool((drift > self.max_drift).any()):
                s = int(drift.argmax())
                raise MDRunError(
                    f'the dynamics blew up {at}: the conserved quantity of '
                    f'system {s} drifted by {float(drift[s]):.3g} eV per '
                    f'atom and bead (limit max_drift = {self.max_drift} eV; '
                    f'try a smaller timestep, {self.dt / units.fs:g} fs now)')
        if self.max_force_std is not None and not self._warned_std and \
                'forces_std_max' in obs and \
                bool((obs['forces_std_max'] > self.max_force_std).any()):
            s = int(obs['forces_std_max'].argmax())
            self._warned_std = True
            import warnings
            warnings.warn(
                f'the committee disagrees {at}: a force deviation of '
                f"{float(obs['forces_std_max'][s]):.3g} eV/Å in system {s} "
                f'(above max_force_std = {self.max_force_std} eV/Å): the '
                f'dynamics reached structures outside what the models '
                f'learned', stacklevel=2)
        hot = obs['temperature'] > self.max_temperature
        if bool(hot.any()):
            s = int(obs['temperature'].argmax())
            raise MDRunError(
                f'the dynamics blew up {at}: system {s} reached '
                f"{float(obs['temperature'][s]):.0f} K (limit "
                f'max_temperature = {self.max_temperature:.0f} K, set for '
                f'{self.temperature:g} K; try a smaller timestep or a '
                f'thermostat)')

    # -- observables ---------------------------------------------------------
    @property
    def time_fs(self) -> float:
        r"""Simulated time in fs."""
        return self.step_count * self.dt / units.fs

    @property
    def centroid(self) -> Tensor:
        r"""Bead-averaged positions :obj:`[S, N, 3]` (Å)."""
        return self.q.mean(dim=1)

    def observables(self) -> Dict[str, Tensor]:
        r"""Per system (each :obj:`[S]`): :obj:`potential` (eV, bead
        average of :math:`V`), :obj:`kinetic_primitive` and
        :obj:`kinetic_virial` (eV, the primitive and centroid-virial
        estimators of the quantum kinetic energy,
        :func:`~pyg_schnet.md.ring_polymer.primitive_kinetic` and
        :func:`~pyg_schnet.md.ring_polymer.centroid_virial_kinetic`; for
        :math:`P = 1` the primitive one is the instantaneous kinetic
        energy of classical MD), :obj:`temperature` (K: from the bead
        momenta, which sample :math:`P T`, divided by :math:`P`),
        :obj:`hamiltonian` (:math:`H_P`, eV) and :obj:`conserved`
        (:math:`H_P` plus the energy the thermostat took out, eV; constant
        up to the integration error). Fixed atoms count no degrees of
        freedom. With a committee as the model also :obj:`energy_std`
        (eV, the committee's energy deviation, bead average) and
        :obj:`forces_std_max` (eV/Å, the largest atom force deviation over
        beads and atoms)."""
        dof = max(self.dof, 1)
        hamiltonian = ring_polymer_hamiltonian(self.p, self.q,
                                               self._potential, self.masses,
                                               self.omega_p)
        extra = {}
        if self._forces_std is not None:
            extra = {'energy_std': self._energy_std.mean(dim=1),
                     'forces_std_max': self._forces_std.amax(dim=(1, 2))}
        return {**extra, 'potential': self._potential.mean(dim=1),
                'kinetic_primitive': primitive_kinetic(
                    self.p, self.q, self.masses, self.beta, self.omega_p,
                    dof),
                'kinetic_virial': centroid_virial_kinetic(
                    self.q, self._forces, self.beta, dof),
                'temperature': kinetic_temperature(self.p, self.masses, dof),
                'hamiltonian': hamiltonian,
                'conserved': hamiltonian + self.thermostat_energy}

    def centroid_kinetic(self) -> Tensor:
        r"""Kinetic energy of the centroid momenta (bead averages), per
        system :obj:`[S]` (eV); averages :math:`\frac{f}{2}k_BT`."""
        return centroid_kinetic(self.p, self.masses)

    # -- running -------------------------------------------------------------
    def snapshot(self, system: int = 0, beads: bool = False) -> Atoms:
        r"""The centroid (or, with :obj:`beads`, all :math:`P` beads as
        one structure of :math:`P N` atoms) of a system as
        :class:`ase.Atoms`, with its observables in :obj:`info`."""
        atoms = self.atoms[system].copy()
        if beads:
            q = self.q[system].reshape(-1, 3)
            atoms = Atoms(numbers=np.tile(atoms.numbers, self.P),
                          positions=q.double().cpu().numpy(),
                          cell=atoms.cell, pbc=atoms.pbc)
        else:
            atoms.set_constraint()
            atoms.positions = self.centroid[system].double().cpu().numpy()
            atoms.set_constraint(self.atoms[system].constraints)
        obs = self.observables()
        atoms.info.update({key: float(value[system])
                           for key, value in obs.items()})
        atoms.info.update(step=self.step_count, system=system,
                          beads=self.P, time_fs=self.time_fs)
        return atoms

    def run(self, steps: int, trajectory: Optional[str] = None,
            log: Optional[str] = None, every: int = 10,
            beads: bool = False, progress: Optional[bool] = None) -> None:
        r"""Runs :obj:`steps` steps.

        Only a run that completed every step gives its files their final
        names. One that stops early (Ctrl-C, exploding dynamics, an error
        in the model) leaves what it wrote in ``FILE.partial`` (complete up
        to the last frame written; an earlier file at the final name stays
        as it was) and raises :class:`MDInterrupted` or
        :class:`MDRunError` naming those files. The state (:attr:`q`,
        :attr:`p`, :attr:`step_count`) is the one of the last step done.

        Args:
            steps (int): Number of steps.
            trajectory (str, optional): A file (``.extxyz``/``.xyz`` or
                ``.traj``) to write every :obj:`every` steps: one frame per
                system, its centroid or (:obj:`beads`) all beads.
            log (str, optional): A text file of one line per system every
                :obj:`every` steps: step, time (fs), system, potential,
                primitive and centroid-virial kinetic energy (eV),
                temperature (K), conserved quantity (eV).
            every (int, optional): Output interval in steps.
            beads (bool, optional): Write every bead, not the centroid.
            progress (bool, optional): A progress bar (default: when the
                output is a terminal).
        """
        for name, value, low in (('steps', steps, 0), ('every', every, 1)):
            if isinstance(value, bool) or not isinstance(value, int) or \
                    value < low:
                raise ValueError(f"'{name}' must be an integer >= {low} "
                                 f'(got {value!r})')
        output = MDOutput(trajectory, log,
                          committee=self._forces_std is not None)
        progress = sys.stderr.isatty() if progress is None else progress
        bar = None
        if progress:
            try:
                from tqdm import tqdm
                bar = tqdm(total=steps, unit='step', leave=False)
            except ImportError:
                bar = None
        first = self.step_count
        try:
            if self.step_count == 0:
                output.write(self, beads)
            for _ in range(steps):
                self.step()
                if self.step_count % every == 0:
                    self.watch()
                    output.write(self, beads)
                if bar is not None:
                    bar.update()
        except KeyboardInterrupt:
            kept = output.abandon()
            raise MDInterrupted(self._stopped('interrupted', first, steps,
                                              kept), kept) from None
        except Exception as e:
            kept = output.abandon()
            full = disk_full_error(e, trajectory or log or '.')
            why = str(full if full is not None else e) or type(e).__name__
            raise MDRunError(self._stopped(why, first, steps, kept),
                             kept) from e
        finally:
            if bar is not None:
                bar.close()
        output.finish()

    def _stopped(self, why: str, first: int, steps: int,
                 kept: List[str]) -> str:
        done = self.step_count - first
        where = (f'; the frames written so far are in {" and ".join(kept)} '
                 f'(nothing was written under the final names)') if kept \
            else ''
        return f'{why} (after {done} of {steps} steps){where}'
