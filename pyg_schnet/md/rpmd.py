r"""Batched molecular dynamics and ring-polymer molecular dynamics (RPMD).

The ring polymer of :math:`P` beads samples
:math:`\exp(-\beta_P H_P)` with :math:`\beta_P = \beta / P` and

.. math::
    H_P = \sum_{j=1}^{P} \left[ \sum_i \frac{|\mathbf{p}_{j,i}|^2}{2 m_i}
    + \frac{1}{2} m_i \omega_P^2 |\mathbf{q}_{j,i} - \mathbf{q}_{j+1,i}|^2
    + V(\mathbf{q}_j) \right], \qquad \omega_P = \frac{P k_B T}{\hbar},

(Ceriotti, Parrinello, Markland, Manolopoulos, `J. Chem. Phys. 133, 124104
(2010) <https://doi.org/10.1063/1.3489925>`_), with :math:`\mathbf{q}_{P+1}
= \mathbf{q}_1`. :math:`P = 1` is classical MD.
"""
import math
import os
import sys
from typing import Dict, List, Optional, Sequence, Union

import numpy as np
import torch
from ase import Atoms, units
from torch import Tensor

from pyg_schnet.md.graph import VerletGraph

#: ħ in ASE units (eV · ASE time).
HBAR = units._hbar * units.J * units.s

# Random normal draws per system generated at once (see _noise).
_NOISE_BLOCK = 64


def normal_modes(beads: int) -> Tensor:
    r"""The orthogonal matrix :math:`C` :obj:`[P, P]` (float64) of the free
    ring polymer's normal modes, :math:`\tilde q_k = \sum_j q_j C_{jk}`:

    .. math::
        C_{jk} = \begin{cases}
        \sqrt{1/P} & k = 0 \\
        \sqrt{2/P} \cos(2\pi jk/P) & 1 \le k < P/2 \\
        \sqrt{1/P} (-1)^j & k = P/2 \\
        \sqrt{2/P} \sin(2\pi jk/P) & P/2 < k < P
        \end{cases}

    with frequencies :math:`\omega_k = 2\omega_P \sin(k\pi/P)`
    (:func:`mode_frequencies`)."""
    P = beads
    j = torch.arange(P, dtype=torch.float64).unsqueeze(1)
    k = torch.arange(P, dtype=torch.float64).unsqueeze(0)
    C = torch.empty(P, P, dtype=torch.float64)
    C[:, :] = math.sqrt(2.0 / P) * torch.where(
        k < P / 2, torch.cos(2 * math.pi * j * k / P),
        torch.sin(2 * math.pi * j * k / P))
    C[:, 0] = math.sqrt(1.0 / P)
    if P % 2 == 0:
        C[:, P // 2] = math.sqrt(1.0 / P) * (-1.0)**j.view(-1)
    return C


def mode_frequencies(beads: int, omega_p: float) -> Tensor:
    r""":math:`\omega_k = 2\omega_P \sin(k\pi/P)`, :obj:`[P]` (float64, in
    the unit of :obj:`omega_p`)."""
    k = torch.arange(beads, dtype=torch.float64)
    return 2.0 * omega_p * torch.sin(k * math.pi / beads)


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
    momenta, :math:`A` rotates each normal mode :math:`k` as a harmonic
    oscillator of frequency :math:`\omega_k = 2\omega_P\sin(k\pi/P)`
    (free flight for :math:`k = 0`), and :math:`O` is the thermostat:

    * :obj:`"none"`: NVE; :math:`H_P` is conserved.
    * :obj:`"pile"`: PILE-L, Langevin on every normal mode at the bead
      temperature :math:`P T`, critically damped internal modes
      :math:`\gamma_k = 2\omega_k` and the centroid with
      :math:`\gamma_0 = 1/\tau_0`.
    * :obj:`"langevin"`: the same for :math:`P = 1`, a Langevin
      thermostat of time constant :math:`\tau_0`.

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
        device, dtype: Where and in which precision to compute.
        skin (float, optional): Skin of the reused graph in Å.
            (default: :obj:`0.5`)
    """
    def __init__(self, model, atoms: Union[Atoms, Sequence[Atoms]],
                 beads: int = 1, temperature: float = 300.0,
                 timestep: float = 0.5, thermostat: str = 'pile',
                 tau0: float = 100.0, systems: int = 1,
                 seed: Union[int, Sequence[int]] = 0,
                 device: Union[str, torch.device] = 'cpu',
                 dtype: torch.dtype = torch.float64, skin: float = 0.5):
        from pyg_schnet.allocator import tune_allocator
        tune_allocator()
        structures = [atoms] * systems if isinstance(atoms, Atoms) else \
            list(atoms)
        if not structures:
            raise ValueError('no structure given')
        if not isinstance(atoms, Atoms) and systems not in (1,
                                                            len(structures)):
            raise ValueError(f"'systems' ({systems}) differs from the number "
                             f'of structures given ({len(structures)})')
        first = structures[0]
        for k, other in enumerate(structures):
            if not np.array_equal(other.numbers, first.numbers):
                raise ValueError(f'structure {k} has other atoms than '
                                 f'structure 0: the systems of one batch '
                                 f'must be the same atoms')
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
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"'{name}' must be positive (got {value})")
        self.model = model
        self.device = torch.device(device)
        self.dtype = dtype
        self.S, self.P, self.N = len(structures), beads, len(first)
        self.temperature = float(temperature)
        self.dt = float(timestep) * units.fs
        self.thermostat = thermostat
        self.tau0 = float(tau0) * units.fs
        seeds = [seed + s for s in range(self.S)] if isinstance(seed, int) \
            else list(seed)
        if len(seeds) != self.S:
            raise ValueError(f'{len(seeds)} seeds for {self.S} systems')
        self.generators = [torch.Generator(device='cpu').manual_seed(int(s))
                           for s in seeds]
        self._noise_left = 0
        self._noise_block: Optional[Tensor] = None
        kwargs = dict(device=self.device, dtype=dtype)
        self.z = torch.as_tensor(first.numbers, dtype=torch.long,
                                 device=self.device)
        self.masses = torch.as_tensor(first.get_masses(), **kwargs)
        self.atoms = [a.copy() for a in structures]
        q = torch.as_tensor(np.stack([a.positions for a in structures]),
                            **kwargs)
        self.q = q.unsqueeze(1).repeat(1, self.P, 1, 1)
        self.periodic = bool(first.pbc.any())
        self.cell = torch.as_tensor(
            np.stack([np.asarray(a.cell) for a in structures]), **kwargs)
        self.pbc = torch.as_tensor(np.stack([a.pbc for a in structures]),
                                   device=self.device)
        # Ring polymer constants (ASE units).
        self.beta = 1.0 / (units.kB * self.temperature)
        self.beta_p = self.beta / self.P
        self.omega_p = self.P / (self.beta * HBAR)
        self.C = normal_modes(self.P).to(**kwargs)
        self.omega_k = mode_frequencies(self.P, self.omega_p).to(**kwargs)
        self.gamma = torch.where(torch.arange(self.P, device=self.device)
                                 == 0, torch.full_like(self.omega_k,
                                                       1.0 / self.tau0),
                                 2.0 * self.omega_k)
        self.p = self._thermal_momenta()
        self.graph = VerletGraph(model.cutoff, skin)
        self.batch = torch.arange(self.S * self.P, device=self.device) \
            .repeat_interleave(self.N)
        self.step_count = 0
        self.thermostat_energy = torch.zeros(self.S, **kwargs)
        self._forces, self._potential = self._evaluate(self.q)

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

    def _thermal_momenta(self) -> Tensor:
        sigma = torch.sqrt(self.masses / self.beta_p).view(1, 1, -1, 1)
        return sigma * self._noise()

    def _evaluate(self, q: Tensor):
        pos = q.reshape(-1, 3)
        num = self.S * self.P
        z = self.z.repeat(num)
        cell = pbc = None
        if self.periodic or bool((self.cell != 0).any()):
            cell = self.cell.repeat_interleave(self.P, dim=0)
            pbc = self.pbc.repeat_interleave(self.P, dim=0)
        edge_index, offsets = self.graph(z, pos, self.batch, num, cell, pbc)
        out = self.model.evaluate(z, pos, edge_index, self.batch, num,
                                  cell if offsets is not None else None,
                                  offsets, symmetric=True, forces=True)
        forces = out['forces'].to(self.dtype).view(self.S, self.P, self.N, 3)
        potential = out['energy'].to(self.dtype).view(self.S, self.P)
        return forces.detach(), potential.detach()

    def _to_modes(self, x: Tensor) -> Tensor:
        r""":math:`\tilde x_k = \sum_j x_j C_{jk}` for every system."""
        if self.P == 1:
            return x
        return torch.matmul(self.C.T, x.reshape(self.S, self.P, -1)) \
            .view_as(x)

    def _from_modes(self, x: Tensor) -> Tensor:
        if self.P == 1:
            return x
        return torch.matmul(self.C, x.reshape(self.S, self.P, -1)) \
            .view_as(x)

    def _free_ring_polymer(self) -> None:
        r"""Exact propagation of the free ring polymer over :math:`\Delta
        t`, mode by mode."""
        p, q = self._to_modes(self.p), self._to_modes(self.q)
        m = self.masses.view(1, 1, -1, 1)
        w = self.omega_k.view(1, -1, 1, 1)
        cos, sin = torch.cos(w * self.dt), torch.sin(w * self.dt)
        safe_w = torch.where(w > 0, w, torch.ones_like(w))
        # sin(w dt) / w -> dt for the centroid (w = 0).
        sin_over_w = torch.where(w > 0, sin / safe_w,
                                 torch.full_like(w, self.dt))
        p_new = cos * p - m * w * sin * q
        q_new = cos * q + sin_over_w * p / m
        self.p, self.q = self._from_modes(p_new), self._from_modes(q_new)

    def _thermostat(self, half_dt: float) -> None:
        if self.thermostat == 'none':
            return
        before = self._bead_kinetic().sum(dim=1)
        p = self._to_modes(self.p)
        c1 = torch.exp(-self.gamma * half_dt).view(1, -1, 1, 1)
        c2 = torch.sqrt(1.0 - c1**2)
        sigma = torch.sqrt(self.masses / self.beta_p).view(1, 1, -1, 1)
        p = c1 * p + c2 * sigma * self._noise()
        self.p = self._from_modes(p)
        self.thermostat_energy += before - self._bead_kinetic().sum(dim=1)

    def step(self) -> None:
        r"""One time step :math:`O\,B\,A\,B\,O`."""
        half = 0.5 * self.dt
        self._thermostat(half)
        self.p = self.p + half * self._forces
        self._free_ring_polymer()
        self._forces, self._potential = self._evaluate(self.q)
        self.p = self.p + half * self._forces
        self._thermostat(half)
        self.step_count += 1

    # -- observables ---------------------------------------------------------
    def _bead_kinetic(self) -> Tensor:
        r"""Kinetic energy of each bead, :obj:`[S, P]` (eV)."""
        return (self.p**2 / (2 * self.masses.view(1, 1, -1, 1))).sum(
            dim=(2, 3))

    def _spring(self) -> Tensor:
        r""":math:`\sum_j \sum_i \frac{1}{2} m_i \omega_P^2 |q_j -
        q_{j+1}|^2` per system, :obj:`[S]` (eV)."""
        diff = self.q - torch.roll(self.q, shifts=-1, dims=1)
        return 0.5 * self.omega_p**2 * (
            self.masses.view(1, 1, -1, 1) * diff**2).sum(dim=(1, 2, 3))

    @property
    def centroid(self) -> Tensor:
        r"""Bead-averaged positions :obj:`[S, N, 3]` (Å)."""
        return self.q.mean(dim=1)

    def observables(self) -> Dict[str, Tensor]:
        r"""Per system (each :obj:`[S]`): :obj:`potential` (eV, bead
        average of :math:`V`), :obj:`kinetic_primitive` and
        :obj:`kinetic_virial` (eV, the primitive and centroid-virial
        estimators of the quantum kinetic energy,
        :math:`\frac{3NP}{2\beta} - \frac{1}{P}\sum_j \frac12 m
        \omega_P^2 |q_j - q_{j+1}|^2` and :math:`\frac{3N}{2\beta} +
        \frac{1}{2P}\sum_j (q_j - \bar q)\cdot\nabla V(q_j)`; for
        :math:`P = 1` the primitive one is the instantaneous kinetic
        energy of classical MD), :obj:`temperature` (K: from the bead
        momenta, which sample :math:`P T`, divided by :math:`P`),
        :obj:`hamiltonian` (:math:`H_P`, eV) and :obj:`conserved`
        (:math:`H_P` plus the energy the thermostat took out, eV; constant
        up to the integration error)."""
        dof = 3 * self.N
        bead_kinetic = self._bead_kinetic()
        spring = self._spring()
        potential = self._potential.mean(dim=1)
        if self.P == 1:
            primitive = bead_kinetic[:, 0]
        else:
            primitive = dof * self.P / (2 * self.beta) - spring / self.P
        deviation = self.q - self.centroid.unsqueeze(1)
        virial = -(deviation * self._forces).sum(dim=(1, 2, 3))
        centroid_virial = dof / (2 * self.beta) + virial / (2 * self.P)
        hamiltonian = bead_kinetic.sum(dim=1) + spring + \
            self._potential.sum(dim=1)
        temperature = 2 * bead_kinetic.sum(dim=1) / (
            dof * self.P * units.kB) / self.P
        return {'potential': potential, 'kinetic_primitive': primitive,
                'kinetic_virial': centroid_virial,
                'temperature': temperature, 'hamiltonian': hamiltonian,
                'conserved': hamiltonian + self.thermostat_energy}

    def centroid_kinetic(self) -> Tensor:
        r"""Kinetic energy of the centroid momenta (bead averages), per
        system :obj:`[S]` (eV); averages :math:`\frac{3N}{2}k_BT`."""
        centroid_p = self.p.mean(dim=1)
        return (centroid_p**2 / (2 * self.masses.view(1, -1, 1))).sum(
            dim=(1, 2))

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
            atoms.positions = self.centroid[system].double().cpu().numpy()
        obs = self.observables()
        atoms.info.update({key: float(value[system])
                           for key, value in obs.items()})
        atoms.info.update(step=self.step_count, system=system,
                          beads=self.P,
                          time_fs=self.step_count * self.dt / units.fs)
        return atoms

    def run(self, steps: int, trajectory: Optional[str] = None,
            log: Optional[str] = None, every: int = 10,
            beads: bool = False, progress: Optional[bool] = None) -> None:
        r"""Runs :obj:`steps` steps.

        Args:
            steps (int): Number of steps.
            trajectory (str, optional): A file (``.extxyz``/``.xyz`` or
                ``.traj``) to write every :obj:`every` steps: one frame per
                system, its centroid or (:obj:`beads`) all beads. Written
                to ``FILE.partial`` and renamed when the run ends, so an
                interrupted run leaves no file that looks complete.
            log (str, optional): A text file of one line per system every
                :obj:`every` steps: step, time (fs), system, potential,
                primitive and centroid-virial kinetic energy (eV),
                temperature (K), conserved quantity (eV).
            every (int, optional): Output interval in steps.
            progress (bool, optional): A progress bar (default: when the
                output is a terminal).
        """
        if steps < 0 or every < 1:
            raise ValueError('steps must be >= 0 and every >= 1')
        writers = _Outputs(trajectory, log)
        progress = sys.stderr.isatty() if progress is None else progress
        bar = None
        if progress:
            try:
                from tqdm import tqdm
                bar = tqdm(total=steps, unit='step', leave=False)
            except ImportError:
                bar = None
        try:
            if self.step_count == 0:
                writers.write(self, beads)
            for _ in range(steps):
                self.step()
                if self.step_count % every == 0:
                    writers.write(self, beads)
                if bar is not None:
                    bar.update()
        finally:
            if bar is not None:
                bar.close()
            writers.close()


class _Outputs:
    r"""The trajectory and log files of a run, written to ``.partial``
    files and renamed into place when the run ends."""
    header = ('# step time_fs system potential_eV kinetic_primitive_eV '
              'kinetic_virial_eV temperature_K conserved_eV\n')

    def __init__(self, trajectory: Optional[str], log: Optional[str]):
        self.paths: List[str] = []
        self.traj = self.log = None
        self.format = None
        if trajectory:
            if not trajectory.endswith(('.xyz', '.extxyz', '.traj')):
                raise ValueError(f'the trajectory {trajectory} must end in '
                                 f'.extxyz, .xyz or .traj')
            self.format = 'traj' if trajectory.endswith('.traj') else \
                'extxyz'
            self.traj_path = trajectory + '.partial'
            if self.format == 'traj':
                from ase.io.trajectory import Trajectory
                self.traj = Trajectory(self.traj_path, 'w')
            else:
                self.traj = open(self.traj_path, 'w')
            self.paths.append(trajectory)
        if log:
            self.log_path = log + '.partial'
            self.log = open(self.log_path, 'w')
            self.log.write(self.header)
            self.paths.append(log)

    def write(self, md: RingPolymerMD, beads: bool) -> None:
        if self.traj is not None:
            for s in range(md.S):
                atoms = md.snapshot(s, beads)
                if self.format == 'traj':
                    self.traj.write(atoms)
                else:
                    import ase.io
                    ase.io.write(self.traj, atoms, format='extxyz')
            if self.format != 'traj':
                self.traj.flush()
        if self.log is not None:
            obs = {k: v.double().cpu().numpy()
                   for k, v in md.observables().items()}
            time = md.step_count * md.dt / units.fs
            for s in range(md.S):
                self.log.write(
                    f"{md.step_count} {time:.3f} {s} "
                    f"{obs['potential'][s]:.8f} "
                    f"{obs['kinetic_primitive'][s]:.8f} "
                    f"{obs['kinetic_virial'][s]:.8f} "
                    f"{obs['temperature'][s]:.3f} "
                    f"{obs['conserved'][s]:.8f}\n")
            self.log.flush()

    def close(self) -> None:
        for handle, partial, final in (
                (self.traj, getattr(self, 'traj_path', None),
                 self.paths[0] if self.traj is not None else None),
                (self.log, getattr(self, 'log_path', None),
                 self.paths[-1] if self.log is not None else None)):
            if handle is None:
                continue
            if hasattr(handle, 'fileno'):
                handle.flush()
                os.fsync(handle.fileno())
            handle.close()
            os.replace(partial, final)
