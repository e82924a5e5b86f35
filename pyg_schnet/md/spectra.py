r"""Infrared spectra from dipole time series of molecular dynamics: the
Fourier transform of the dipole autocorrelation with the harmonic quantum
correction, as pure functions of arrays.

The classical absorption line shape is

.. math::
    I_{\mathrm{cl}}(\omega) \propto \omega^2 \int_{-\infty}^{\infty}
    \langle \boldsymbol{\mu}(0) \cdot \boldsymbol{\mu}(t) \rangle\,
    w(t)\, e^{-i\omega t}\, \mathrm{d}t

(:math:`w` a window that takes the correlation smoothly to zero at the
largest lag); the harmonic quantum correction factor
:math:`Q(\omega) = \beta\hbar\omega / (1 - e^{-\beta\hbar\omega})`
(Ramírez et al., J. Chem. Phys. 121, 3973 (2004)) makes it
:math:`I(\omega) = Q(\omega)\, I_{\mathrm{cl}}(\omega)`, exact for a
harmonic system. Neither moves a peak by more than the resolution; both
change relative intensities.

:func:`trajectory_dipoles` gives the dipole time series of a trajectory
from a model with a :class:`~pyg_schnet.nn.properties.Dipole` head (for
ring-polymer MD: of the centroids, :attr:`RingPolymerMD.centroid`).

Units: time in fs, dipoles in e·Å, temperature in K, wavenumbers in cm⁻¹.
"""
from typing import Dict, List, Sequence, Tuple

import numpy as np
import torch

#: Speed of light in cm/fs.
C_CM_PER_FS = 2.99792458e-5
#: Planck constant times c in eV·cm: hbar omega = HC_EV_CM * wavenumber.
HC_EV_CM = 1.239841984e-4
#: Boltzmann constant in eV/K.
KB_EV = 8.617333262e-5


def dipole_autocorrelation(dipoles: np.ndarray, max_lag: int) -> np.ndarray:
    r"""The dipole autocorrelation :math:`C(\tau) = \langle
    \boldsymbol{\mu}(t) \cdot \boldsymbol{\mu}(t + \tau) \rangle_t` for lags
    :math:`\tau = 0 \ldots` :obj:`max_lag` - 1 steps, averaged over all time
    origins of each trajectory and over the trajectories (an FFT with zero
    padding: no wrap-around). The mean dipole of each trajectory is
    subtracted first (it gives only a peak at zero frequency).

    Args:
        dipoles (numpy.ndarray): :obj:`[T, 3]` or :obj:`[R, T, 3]` (R
            trajectories of T steps), e·Å.
        max_lag (int): Number of lags, at most T.

    Returns:
        :obj:`[max_lag]` in (e·Å)².
    """
    mu = np.asarray(dipoles, dtype=np.float64)
    if mu.ndim == 2:
        mu = mu[None]
    if mu.ndim != 3 or mu.shape[-1] != 3:
        raise ValueError(f'dipoles must have shape [T, 3] or [R, T, 3], got '
                         f'{list(mu.shape)}')
    steps = mu.shape[1]
    if not 1 <= max_lag <= steps:
        raise ValueError(f'max_lag must be between 1 and the {steps} steps, '
                         f'got {max_lag}')
    if not np.isfinite(mu).all():
        raise ValueError('the dipole time series is not finite')
    mu = mu - mu.mean(axis=1, keepdims=True)
    size = 1 << int(np.ceil(np.log2(2 * steps)))
    spectrum = np.fft.rfft(mu, n=size, axis=1)
    power = (spectrum * spectrum.conj()).real.sum(axis=-1)  # over x, y, z
    corr = np.fft.irfft(power, n=size, axis=1)[:, :max_lag]
    corr /= (steps - np.arange(max_lag))[None]  # origins per lag
    return corr.mean(axis=0)


def quantum_correction(wavenumbers: np.ndarray,
                       temperature: float) -> np.ndarray:
    r"""The harmonic quantum correction factor :math:`Q = x / (1 -
    e^{-x})`, :math:`x = \beta\hbar\omega = h c \tilde\nu / k_B T`
    (1 at :math:`\tilde\nu = 0`), for wavenumbers in cm⁻¹ and
    :obj:`temperature` in K."""
    x = HC_EV_CM * np.asarray(wavenumbers, dtype=np.float64) / \
        (KB_EV * temperature)
    out = np.ones_like(x)
    nonzero = np.abs(x) > 1e-12
    out[nonzero] = x[nonzero] / -np.expm1(-x[nonzero])
    return out


def ir_spectrum(dipoles: np.ndarray, timestep: float, temperature: float,
                max_lag_fs: float = 1000.0, correction: bool = True
                ) -> Tuple[np.ndarray, np.ndarray]:
    r"""The IR absorption spectrum :math:`I(\tilde\nu)` of a dipole time
    series (see the module's formula), normalised to a maximum of 1.

    Args:
        dipoles (numpy.ndarray): :obj:`[T, 3]` or :obj:`[R, T, 3]` dipoles
            in e·Å, every :obj:`timestep` fs (NVE trajectories).
        timestep (float): Time between samples in fs.
        temperature (float): Temperature of the trajectories in K (for the
            quantum correction).
        max_lag_fs (float, optional): Longest lag of the correlation in fs;
            the resolution is about :math:`1/(c \cdot \text{max lag})`
            (33 cm⁻¹ for 1 ps). (default: :obj:`1000.0`)
        correction (bool, optional): Apply the harmonic quantum
            correction. (default: :obj:`True`)

    Returns:
        Wavenumbers in cm⁻¹ and intensities (arbitrary units, maximum 1).
    """
    if not timestep > 0:
        raise ValueError(f'timestep must be positive (fs), got {timestep}')
    steps = np.asarray(dipoles).shape[-2]
    max_lag = max(2, min(steps, int(round(max_lag_fs / timestep)) + 1))
    corr = dipole_autocorrelation(dipoles, max_lag)
    window = np.hanning(2 * max_lag - 1)[max_lag - 1:]
    tapered = corr * window
    # the even extension of C(t): its transform is real
    even = np.concatenate([tapered, tapered[-2:0:-1]])
    transform = np.fft.rfft(even).real * timestep
    frequency = np.fft.rfftfreq(even.size, d=timestep)  # 1/fs
    wavenumbers = frequency / C_CM_PER_FS
    intensity = wavenumbers**2 * transform
    if correction:
        intensity = intensity * quantum_correction(wavenumbers, temperature)
    peak = np.abs(intensity).max()
    return wavenumbers, intensity / (peak if peak > 0 else 1.0)


def spectrum_peaks(wavenumbers: np.ndarray, intensity: np.ndarray,
                   near: Sequence[float], width: float = 250.0
                   ) -> List[Dict[str, float]]:
    r"""For each expected position in :obj:`near` (cm⁻¹), the highest
    point of the spectrum within :math:`\pm` :obj:`width` cm⁻¹ of it (and
    not past half-way to the next expected position, so that close modes
    get their own peaks; at least one grid spacing), refined by a parabola
    through its neighbours: a list of dicts with :obj:`expected`,
    :obj:`peak` (cm⁻¹) and :obj:`intensity`."""
    wavenumbers = np.asarray(wavenumbers)
    intensity = np.asarray(intensity)
    spacing = float(wavenumbers[1] - wavenumbers[0])
    centres = np.sort(np.asarray(near, dtype=np.float64))
    out = []
    for centre in near:
        others = centres[centres != centre]
        gap = np.abs(others - centre).min() / 2 if others.size else width
        reach = max(min(width, gap), spacing)
        inside = np.nonzero(np.abs(wavenumbers - centre) <= reach)[0]
        if inside.size == 0:
            raise ValueError(f'no point of the spectrum within {reach:g} '
                             f'cm⁻¹ of {centre} cm⁻¹')
        k = int(inside[np.argmax(intensity[inside])])
        peak = float(wavenumbers[k])
        if 0 < k < wavenumbers.size - 1:
            a, b, c = intensity[k - 1], intensity[k], intensity[k + 1]
            denominator = a - 2 * b + c
            if b >= a and b >= c and denominator < 0:  # a local maximum
                step = wavenumbers[1] - wavenumbers[0]
                peak += float(0.5 * (a - c) / denominator * step)
        out.append({'expected': float(centre), 'peak': peak,
                    'intensity': float(intensity[k])})
    return out


@torch.no_grad()
def trajectory_dipoles(model: torch.nn.Module, numbers: np.ndarray,
                       positions: np.ndarray, chunk: int = 4096
                       ) -> np.ndarray:
    r"""The dipoles :obj:`[..., 3]` (e·Å) that :obj:`model`'s
    :class:`~pyg_schnet.nn.properties.Dipole` head gives the molecules
    :obj:`positions` :obj:`[..., N, 3]` (Å; any leading shape: frames,
    systems) of atomic numbers :obj:`numbers` :obj:`[N]`, neutral,
    :obj:`chunk` structures per model call."""
    from pyg_schnet.graph import build_graph

    if 'dipole' not in model.property_heads():
        raise ValueError('the model has no dipole head (train it with '
                         '--properties mu or dipole)')
    weight = next(model.parameters())
    positions = np.asarray(positions, dtype=np.float64)
    lead, n = positions.shape[:-2], positions.shape[-2]
    flat = positions.reshape(-1, n, 3)
    z1 = torch.as_tensor(np.asarray(numbers), dtype=torch.long,
                         device=weight.device)
    out = []
    for start in range(0, flat.shape[0], chunk):
        part = torch.as_tensor(flat[start:start + chunk], dtype=weight.dtype,
                               device=weight.device)
        count = part.shape[0]
        pos = part.reshape(-1, 3)
        z = z1.repeat(count)
        batch = torch.arange(count, device=weight.device).repeat_interleave(n)
        edge_index, _ = build_graph(pos, model.cutoff, batch,
                                    num_graphs=count)
        result = model.evaluate(z, pos, edge_index, batch, count,
                                forces=False, properties=True)
        out.append(result['dipole'].double().cpu().numpy())
    return np.concatenate(out).reshape(*lead, 3)
