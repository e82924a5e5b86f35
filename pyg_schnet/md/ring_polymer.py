r"""The physics of (ring-polymer) molecular dynamics as pure functions of
tensors: normal modes, the exact free ring-polymer step, the force step,
the PILE-L/Langevin thermostat step and the estimators. Nothing here keeps
state; :class:`~pyg_schnet.md.RingPolymerMD` is the driver that owns the
state and calls these functions.

Shapes: positions :math:`\mathbf{q}` and momenta :math:`\mathbf{p}` are
:obj:`[S, P, N, 3]` (systems, beads, atoms; Å and amu·Å per ASE time
unit), masses :obj:`[N]` (amu). Units are ASE's throughout: eV, Å, amu
and :obj:`ase.units.fs` for times, so :math:`k_B` is
:obj:`ase.units.kB` and :math:`\hbar` is :data:`HBAR`.

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
from typing import Optional, Tuple

import torch
from ase import units
from torch import Tensor

#: ħ in ASE units (eV · ASE time).
HBAR = units._hbar * units.J * units.s


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


def ring_frequency(beads: int, temperature: float) -> float:
    r""":math:`\omega_P = P k_B T / \hbar` in inverse ASE time units, for
    :obj:`temperature` in K."""
    return beads * units.kB * temperature / HBAR


def pile_friction(omega_k: Tensor, tau0: float) -> Tensor:
    r"""The PILE-L friction of each normal mode, :obj:`[P]`:
    :math:`\gamma_0 = 1/\tau_0` for the centroid (:obj:`tau0` in ASE time
    units) and critical damping :math:`\gamma_k = 2\omega_k` for the
    internal modes."""
    first = torch.arange(omega_k.numel(), device=omega_k.device) == 0
    return torch.where(first, torch.full_like(omega_k, 1.0 / tau0),
                       2.0 * omega_k)


def to_modes(x: Tensor, C: Tensor) -> Tensor:
    r""":math:`\tilde x_k = \sum_j x_j C_{jk}` of :obj:`x` :obj:`[S, P, N,
    3]` for every system."""
    S, P = x.shape[:2]
    if P == 1:
        return x
    return torch.matmul(C.T, x.reshape(S, P, -1)).view_as(x)


def from_modes(x: Tensor, C: Tensor) -> Tensor:
    r"""The inverse of :func:`to_modes`, :math:`x_j = \sum_k C_{jk}
    \tilde x_k`."""
    S, P = x.shape[:2]
    if P == 1:
        return x
    return torch.matmul(C, x.reshape(S, P, -1)).view_as(x)


def free_ring_polymer_step(q: Tensor, p: Tensor, masses: Tensor,
                           omega_k: Tensor, dt: float, C: Tensor
                           ) -> Tuple[Tensor, Tensor]:
    r"""Exact propagation of the free ring polymer (springs, no potential)
    over :math:`\Delta t`: each normal mode :math:`k` turns as a harmonic
    oscillator of frequency :math:`\omega_k`,

    .. math::
        \begin{pmatrix} \tilde p_k \\ \tilde q_k \end{pmatrix} \leftarrow
        \begin{pmatrix} \cos\omega_k\Delta t & -m\omega_k\sin\omega_k
        \Delta t \\ \sin(\omega_k\Delta t)/(m\omega_k) &
        \cos\omega_k\Delta t \end{pmatrix}
        \begin{pmatrix} \tilde p_k \\ \tilde q_k \end{pmatrix},

    and the centroid (:math:`\omega_0 = 0`) flies freely,
    :math:`\tilde q_0 \leftarrow \tilde q_0 + \Delta t\,\tilde p_0/m`.

    Returns:
        The new :obj:`(q, p)`.
    """
    pm, qm = to_modes(p, C), to_modes(q, C)
    m = masses.view(1, 1, -1, 1)
    w = omega_k.view(1, -1, 1, 1)
    cos, sin = torch.cos(w * dt), torch.sin(w * dt)
    safe_w = torch.where(w > 0, w, torch.ones_like(w))
    # sin(w dt) / w -> dt for the centroid (w = 0).
    sin_over_w = torch.where(w > 0, sin / safe_w, torch.full_like(w, dt))
    p_new = cos * pm - m * w * sin * qm
    q_new = cos * qm + sin_over_w * pm / m
    return from_modes(q_new, C), from_modes(p_new, C)


def force_step(p: Tensor, forces: Tensor, dt: float) -> Tensor:
    r"""The kick of the physical forces, :math:`\mathbf{p} \leftarrow
    \mathbf{p} + \Delta t\,\mathbf{F}` (forces in eV/Å, :obj:`dt` in ASE
    time units)."""
    return p + dt * forces


def thermostat_step(p: Tensor, masses: Tensor, gamma: Tensor,
                    beta_p: float, dt: float, noise: Tensor, C: Tensor
                    ) -> Tensor:
    r"""The exact Ornstein–Uhlenbeck step of a Langevin thermostat on every
    normal mode over :math:`\Delta t` (PILE-L; for :math:`P = 1` a plain
    Langevin thermostat):

    .. math::
        \tilde p_k \leftarrow c_1 \tilde p_k + c_2
        \sqrt{m/\beta_P}\,\xi_k, \qquad c_1 = e^{-\gamma_k \Delta t},
        \quad c_2 = \sqrt{1 - c_1^2},

    with :math:`\xi` the standard normal :obj:`noise` :obj:`[S, P, N, 3]`,
    :obj:`gamma` the friction of each mode :obj:`[P]`
    (:func:`pile_friction`) and :math:`\beta_P = 1/(P k_B T)` in 1/eV.
    Leaves the distribution :math:`\exp(-\beta_P\,|\tilde p|^2/2m)`
    invariant."""
    pm = to_modes(p, C)
    c1 = torch.exp(-gamma * dt).view(1, -1, 1, 1)
    c2 = torch.sqrt(1.0 - c1**2)
    sigma = torch.sqrt(masses / beta_p).view(1, 1, -1, 1)
    return from_modes(c1 * pm + c2 * sigma * noise, C)


def bead_kinetic(p: Tensor, masses: Tensor) -> Tensor:
    r""":math:`\sum_i |\mathbf{p}_{j,i}|^2 / 2m_i` of each bead, :obj:`[S,
    P]` (eV)."""
    return (p**2 / (2 * masses.view(1, 1, -1, 1))).sum(dim=(2, 3))


def spring_energy(q: Tensor, masses: Tensor, omega_p: float) -> Tensor:
    r""":math:`\sum_j \sum_i \frac{1}{2} m_i \omega_P^2 |\mathbf{q}_{j,i} -
    \mathbf{q}_{j+1,i}|^2` of each system, :obj:`[S]` (eV)."""
    diff = q - torch.roll(q, shifts=-1, dims=1)
    return 0.5 * omega_p**2 * (masses.view(1, 1, -1, 1) * diff**2).sum(
        dim=(1, 2, 3))


def primitive_kinetic(p: Tensor, q: Tensor, masses: Tensor, beta: float,
                      omega_p: float, dof: int) -> Tensor:
    r"""The primitive estimator of the quantum kinetic energy, :obj:`[S]`
    (eV):

    .. math::
        K_{\mathrm{pr}} = \frac{f P}{2\beta} - \frac{1}{P}\sum_j \sum_i
        \frac12 m_i\omega_P^2 |\mathbf{q}_{j,i} - \mathbf{q}_{j+1,i}|^2

    with :math:`f` = :obj:`dof` the degrees of freedom of one bead
    (:math:`3N` minus fixed coordinates); for :math:`P = 1` it is the
    instantaneous kinetic energy :math:`\sum_i |\mathbf{p}_i|^2/2m_i` of
    classical MD."""
    P = q.size(1)
    if P == 1:
        return bead_kinetic(p, masses)[:, 0]
    return dof * P / (2 * beta) - spring_energy(q, masses, omega_p) / P


def centroid_virial_kinetic(q: Tensor, forces: Tensor, beta: float,
                            dof: int) -> Tensor:
    r"""The centroid-virial estimator of the quantum kinetic energy,
    :obj:`[S]` (eV), with :math:`\bar{\mathbf{q}}` the centroid and
    :math:`f` = :obj:`dof` the degrees of freedom of one bead:

    .. math::
        K_{\mathrm{cv}} = \frac{f}{2\beta} + \frac{1}{2P}\sum_j \sum_i
        (\mathbf{q}_{j,i} - \bar{\mathbf{q}}_i)\cdot\nabla_i V(\mathbf{q}_j)
    """
    P = q.size(1)
    deviation = q - q.mean(dim=1, keepdim=True)
    virial = -(deviation * forces).sum(dim=(1, 2, 3))
    return dof / (2 * beta) + virial / (2 * P)


def kinetic_temperature(p: Tensor, masses: Tensor, dof: int) -> Tensor:
    r"""The physical temperature from the bead momenta, :obj:`[S]` (K):
    :math:`T = \frac{2}{f P k_B}\sum_j K_j / P` (the beads sample
    :math:`P T`; :math:`f` = :obj:`dof` per bead)."""
    P = p.size(1)
    return 2 * bead_kinetic(p, masses).sum(dim=1) / (dof * P * units.kB) / P


def centroid_kinetic(p: Tensor, masses: Tensor) -> Tensor:
    r"""Kinetic energy of the centroid momenta (bead averages) of each
    system, :obj:`[S]` (eV); averages :math:`\frac{f}{2}k_BT`."""
    centroid_p = p.mean(dim=1)
    return (centroid_p**2 / (2 * masses.view(1, -1, 1))).sum(dim=(1, 2))


def ring_polymer_hamiltonian(p: Tensor, q: Tensor, potential: Tensor,
                             masses: Tensor, omega_p: float) -> Tensor:
    r""":math:`H_P` of each system, :obj:`[S]` (eV), from the bead
    potentials :obj:`potential` :obj:`[S, P]` (eV)."""
    return bead_kinetic(p, masses).sum(dim=1) + \
        spring_energy(q, masses, omega_p) + potential.sum(dim=1)


def thermal_momenta(masses: Tensor, beta_p: float, noise: Tensor,
                    free: Optional[Tensor] = None) -> Tensor:
    r"""Momenta drawn from :math:`\exp(-\beta_P |\mathbf{p}|^2/2m)`,
    :math:`\sqrt{m/\beta_P}\,\xi` for standard normal :obj:`noise`
    :obj:`[S, P, N, 3]`; zero for the atoms not in :obj:`free` (a bool
    mask :obj:`[N]`, default all)."""
    p = torch.sqrt(masses / beta_p).view(1, 1, -1, 1) * noise
    if free is not None:
        p = p * free.view(1, 1, -1, 1).to(p.dtype)
    return p
