"""IR spectra from dipole time series: exact answers for known signals."""
import numpy as np
import pytest
import torch
from ase.build import molecule

from pyg_schnet.md.spectra import (
    C_CM_PER_FS,
    dipole_autocorrelation,
    ir_spectrum,
    quantum_correction,
    spectrum_peaks,
    trajectory_dipoles,
)

DT = 0.5  # fs


def two_modes(a1=0.1, a2=0.05, nu1=1600.0, nu2=3700.0, steps=40000):
    t = np.arange(steps) * DT
    return np.stack([a1 * np.cos(2 * np.pi * nu1 * C_CM_PER_FS * t),
                     a2 * np.sin(2 * np.pi * nu2 * C_CM_PER_FS * t + 0.3),
                     np.zeros_like(t)], axis=-1)


def test_autocorrelation_equals_the_direct_average():
    rng = np.random.default_rng(0)
    mu = rng.normal(size=(2, 300, 3))
    lags = 40
    centred = mu - mu.mean(axis=1, keepdims=True)
    direct = np.array([
        np.mean([np.mean(np.sum(c[:300 - k] * c[k:], axis=-1))
                 for c in centred]) for k in range(lags)])
    assert np.allclose(dipole_autocorrelation(mu, lags), direct, atol=1e-12)
    with pytest.raises(ValueError, match='max_lag'):
        dipole_autocorrelation(mu, 301)
    with pytest.raises(ValueError, match='not finite'):
        dipole_autocorrelation(np.full((10, 3), np.nan), 5)


def test_peaks_sit_at_the_frequencies_of_the_signal():
    w, intensity = ir_spectrum(two_modes(), DT, 300.0, max_lag_fs=2000.0)
    peaks = spectrum_peaks(w, intensity, [1580.0, 3720.0])
    assert abs(peaks[0]['peak'] - 1600.0) < 1.0
    assert abs(peaks[1]['peak'] - 3700.0) < 1.0
    assert intensity.max() == pytest.approx(1.0)
    # nothing in between
    middle = (w > 2000) & (w < 3300)
    assert np.abs(intensity[middle]).max() < 1e-2


def _band(w, intensity, centre, half=120.0):
    inside = np.abs(w - centre) < half
    return intensity[inside].sum()


def test_band_intensities_follow_omega_squared_and_the_correction():
    mu = two_modes()
    w, plain = ir_spectrum(mu, DT, 300.0, max_lag_fs=2000.0,
                           correction=False)
    ratio = _band(w, plain, 3700.0) / _band(w, plain, 1600.0)
    # I ∝ ω² |a|²: (0.05² 3700²) / (0.1² 1600²)
    assert ratio == pytest.approx(0.05**2 * 3700**2 / (0.1**2 * 1600**2),
                                  rel=0.02)
    w, corrected = ir_spectrum(mu, DT, 300.0, max_lag_fs=2000.0)
    q = quantum_correction(np.array([1600.0, 3700.0]), 300.0)
    assert _band(w, corrected, 3700.0) / _band(w, corrected, 1600.0) == \
        pytest.approx(ratio * q[1] / q[0], rel=0.02)


def test_quantum_correction_limits():
    kt = 8.617333262e-5 * 300.0 / 1.239841984e-4  # k_B T in cm⁻¹
    q = quantum_correction(np.array([0.0, kt, 1e-9]), 300.0)
    assert q[0] == 1.0 and q[2] == pytest.approx(1.0)
    assert q[1] == pytest.approx(1.0 / (1.0 - np.exp(-1.0)), rel=1e-9)


def test_trajectory_dipoles_equal_the_model_frame_by_frame():
    from pyg_schnet.data import from_ase
    from pyg_schnet.models import SchNet

    torch.manual_seed(0)
    model = SchNet(16, 16, 2, 10, cutoff=4.0,
                   properties=['dipole']).double().eval()
    atoms = molecule('CH3OH')
    rng = np.random.default_rng(1)
    frames = atoms.positions + rng.normal(0, 0.05, (3, 2, len(atoms), 3))
    series = trajectory_dipoles(model, atoms.numbers, frames, chunk=4)
    assert series.shape == (3, 2, 3)
    for i in range(3):
        for j in range(2):
            one = atoms.copy()
            one.positions = frames[i, j]
            expected = model.compute(from_ase(one, dtype=torch.float64))
            assert np.allclose(series[i, j],
                               expected['dipole'][0].numpy(), atol=1e-12)
    with pytest.raises(ValueError, match='no dipole head'):
        trajectory_dipoles(SchNet(8, 8, 1, 5).double(), atoms.numbers,
                           frames)
