"""Molecular dynamics: exact answers of ring-polymer MD on a harmonic
oscillator, energy conservation, thermostat temperatures, batching; the
ASE calculator with its reused graph and ASE's drivers (i-PI: test_ipi.py)."""
import math

import numpy as np
import pytest
import torch
from ase import Atoms, units
from ase.build import bulk, molecule

from pyg_schnet.data import from_ase
from pyg_schnet.md import (
    RingPolymerMD,
    SchNetCalculator,
    mode_frequencies,
    normal_modes,
)
from pyg_schnet.md.ring_polymer import HBAR, bead_kinetic

from conftest import small_models


class HarmonicWell(torch.nn.Module):
    r"""An analytic potential with the model interface:
    :math:`V = \sum_i \frac12 k |\mathbf{r}_i|^2` (eV, Å), so each atom is
    a 3-D isotropic harmonic oscillator of :math:`\omega = \sqrt{k/m}`."""
    cutoff = 1.0

    def __init__(self, k: float):
        super().__init__()
        self.k = k

    def evaluate(self, z, pos, edge_index, batch, num_graphs, cell=None,
                 cell_offsets=None, symmetric=False, forces=True,
                 stress=False, energies=False):
        per_atom = 0.5 * self.k * (pos**2).sum(dim=-1)
        energy = torch.zeros(num_graphs, dtype=pos.dtype).index_add(
            0, batch, per_atom)
        return {'energy': energy, 'forces': -self.k * pos}


MASS = 1.008  # amu (hydrogen)
T = 300.0  # K
BETA = 1.0 / (units.kB * T)
# A strongly quantum oscillator: hbar * omega = 4 k_B T (period 40 fs).
OMEGA = 4.0 / (BETA * HBAR)
K = MASS * OMEGA**2


def finite_p_x2(P):
    r"""Exact bead-averaged <x^2> (per Cartesian component) of the P-bead
    ring polymer of the oscillator: (1/(beta m)) sum_k 1/(omega^2 +
    omega_k^2)."""
    omega_p = P / (BETA * HBAR)
    omega_k = mode_frequencies(P, omega_p).numpy()
    return float(np.sum(1.0 / (OMEGA**2 + omega_k**2)) / (BETA * MASS))


def quantum_x2():
    return HBAR / (2 * MASS * OMEGA) / math.tanh(BETA * HBAR * OMEGA / 2)


def oscillators(systems):
    return Atoms('H', positions=[[0.0, 0.0, 0.0]], masses=[MASS])


def sample_x2(P, systems=32, steps=3000, every=4, seed=0):
    md = RingPolymerMD(HarmonicWell(K), oscillators(systems), beads=P,
                       temperature=T, timestep=1.0, thermostat='pile'
                       if P > 1 else 'langevin', tau0=20.0,
                       systems=systems, seed=seed)
    for _ in range(300):  # equilibrate
        md.step()
    sums = torch.zeros(systems, dtype=torch.float64)
    count = 0
    for k in range(steps):
        md.step()
        if k % every == 0:
            sums += md.q.pow(2).mean(dim=(1, 2, 3))
            count += 1
    per_system = sums / count
    return float(per_system.mean()), \
        float(per_system.std() / math.sqrt(systems))


def test_normal_modes_diagonalise_the_ring():
    for P in (1, 2, 3, 4, 8):
        C = normal_modes(P)
        eye = torch.eye(P, dtype=torch.float64)
        torch.testing.assert_close(C.T @ C, eye)
        ring = 2 * eye - torch.roll(eye, 1, 0) - torch.roll(eye, -1, 0)
        torch.testing.assert_close(C.T @ ring @ C, torch.diag(
            mode_frequencies(P, 1.0)**2), atol=1e-12, rtol=0)


@pytest.mark.parametrize('P', [1, 8])
def test_rpmd_harmonic_oscillator_gives_the_exact_finite_p_result(P):
    mean, error = sample_x2(P)
    exact = finite_p_x2(P)
    if P == 1:  # the classical result k_B T / (m omega^2)
        assert exact == pytest.approx(1.0 / (BETA * MASS * OMEGA**2))
    assert abs(mean - exact) < 4 * error + 1e-3 * exact, (mean, error, exact)
    assert error < 0.02 * exact  # the test has the power to tell


def test_rpmd_approaches_the_quantum_result_as_p_grows():
    # P = 32 beads: the finite-P value is within 0.6 % of the quantum
    # <x^2> = hbar / (2 m omega) coth(beta hbar omega / 2) at beta hbar
    # omega = 4; the classical value is half as large.
    quantum = quantum_x2()
    assert abs(finite_p_x2(32) - quantum) < 0.006 * quantum
    assert finite_p_x2(1) < 0.5 * quantum
    mean, error = sample_x2(32, systems=16, steps=2000)
    assert abs(mean - quantum) < 4 * error + 0.006 * quantum, \
        (mean, error, quantum)


def test_nve_conserves_the_ring_polymer_hamiltonian():
    md = RingPolymerMD(HarmonicWell(K), oscillators(4), beads=8,
                       temperature=T, timestep=0.25, thermostat='none',
                       systems=4, seed=1)
    start = md.observables()['conserved']
    values = []
    for _ in range(2000):
        md.step()
        values.append(md.observables()['conserved'] - start)
    values = torch.stack(values)
    # Stated bound: at 0.25 fs the error of H_P stays below 0.5 % of the
    # ring polymer's thermal energy 3 N P k_B T (it is bounded, not
    # drifting, and grows as dt^2: about 1 % at 0.5 fs for this very stiff
    # oscillator, hbar omega = 4 k_B T), and the last 500 steps average as
    # the first 500.
    scale = 3 * 8 * units.kB * T
    assert float(values.abs().max()) < 5e-3 * scale
    drift = values[-500:].mean(dim=0) - values[:500].mean(dim=0)
    assert float(drift.abs().max()) < 5e-4 * scale


@pytest.mark.parametrize('P', [1, 8])
def test_thermostat_temperatures(P):
    systems, N = 32, 1
    md = RingPolymerMD(HarmonicWell(K), oscillators(systems), beads=P,
                       temperature=T, timestep=1.0,
                       thermostat='pile' if P > 1 else 'langevin',
                       tau0=20.0, systems=systems, seed=7)
    for _ in range(200):
        md.step()
    centroid, bead = [], []
    for k in range(3000):
        md.step()
        if k % 3 == 0:
            centroid.append(md.centroid_kinetic())
            bead.append(bead_kinetic(md.p, md.masses).mean(dim=1))
    centroid = torch.stack(centroid).mean(dim=0)
    bead = torch.stack(bead).mean(dim=0)
    target_centroid = 1.5 * N * units.kB * T
    target_bead = 1.5 * N * units.kB * P * T
    for values, target in ((centroid, target_centroid),
                           (bead, target_bead)):
        mean, error = float(values.mean()), float(values.std() /
                                                  math.sqrt(systems))
        assert abs(mean - target) < 4 * error + 1e-3 * target, \
            (mean, error, target)
        assert error < 0.03 * target


@pytest.mark.parametrize('potential', ['harmonic', 'schnet'])
def test_batched_systems_equal_separate_runs(potential):
    if potential == 'harmonic':
        model, atoms = HarmonicWell(K), oscillators(1)
    else:
        model, atoms = small_models()['schnet'], molecule('H2O')
    batched = RingPolymerMD(model, atoms, beads=4, systems=3, seed=10,
                            timestep=0.5, tau0=20.0)
    for _ in range(40):
        batched.step()
    for s in range(3):
        alone = RingPolymerMD(model, atoms, beads=4, systems=1, seed=10 + s,
                              timestep=0.5, tau0=20.0)
        for _ in range(40):
            alone.step()
        torch.testing.assert_close(alone.q[0], batched.q[s], rtol=1e-9,
                                   atol=1e-9)
        torch.testing.assert_close(alone.p[0], batched.p[s], rtol=1e-9,
                                   atol=1e-9)


def test_trajectory_and_log_files(tmp_path):
    import ase.io
    model = small_models()['schnet']
    md = RingPolymerMD(model, molecule('H2O'), beads=2, systems=2,
                       timestep=0.5)
    traj, log = tmp_path / 'md.extxyz', tmp_path / 'md.log'
    md.run(20, trajectory=str(traj), log=str(log), every=10)
    frames = ase.io.read(traj, ':')
    assert len(frames) == 3 * 2  # steps 0, 10, 20 for two systems
    assert frames[-1].info['step'] == 20 and frames[-1].info['system'] == 1
    lines = log.read_text().splitlines()
    assert lines[0].startswith('# step') and len(lines) == 1 + 3 * 2
    md.run(10, trajectory=str(tmp_path / 'beads.traj'), beads=True,
           every=10)
    beads = ase.io.read(tmp_path / 'beads.traj', ':')
    assert len(beads[0]) == 2 * 3
    assert not list(tmp_path.glob('*.partial'))


def test_rpmd_refuses_bad_arguments():
    model = HarmonicWell(K)
    with pytest.raises(ValueError, match='langevin'):
        RingPolymerMD(model, oscillators(1), beads=4, thermostat='langevin')
    with pytest.raises(ValueError, match='beads'):
        RingPolymerMD(model, oscillators(1), beads=0)
    with pytest.raises(ValueError, match='timestep'):
        RingPolymerMD(model, oscillators(1), timestep=-1.0)
    with pytest.raises(ValueError, match='same atoms'):
        RingPolymerMD(model, [molecule('H2O'), molecule('NH3')])


# -- the ASE calculator ------------------------------------------------------

def test_calculator_with_reused_graph_equals_fresh_graph():
    from ase.md.velocitydistribution import MaxwellBoltzmannDistribution
    from ase.md.verlet import VelocityVerlet
    model = small_models()['schnet']
    atoms = bulk('Cu', 'fcc', a=3.6) * (2, 2, 2)
    atoms.rattle(0.05, seed=0)
    atoms.calc = SchNetCalculator(model, dtype=torch.float64, skin=0.5)
    MaxwellBoltzmannDistribution(atoms, temperature_K=2000,
                                 rng=np.random.default_rng(0))
    dyn = VelocityVerlet(atoms, timestep=2.0 * units.fs)
    checked = 0

    def compare():
        nonlocal checked
        data = from_ase(atoms, torch.float64)
        energy, forces, stress = model(data, forces=True, stress=True)
        assert atoms.get_potential_energy() == pytest.approx(
            float(energy[0]), abs=1e-10)
        np.testing.assert_allclose(atoms.get_forces(), forces.numpy(),
                                   atol=1e-10)
        np.testing.assert_allclose(atoms.get_stress(voigt=False),
                                   stress[0].numpy(), atol=1e-10)
        np.testing.assert_allclose(atoms.get_potential_energies().sum(),
                                   float(energy[0]), atol=1e-9)
        checked += 1
    dyn.attach(compare, interval=1)
    dyn.run(30)
    assert checked == 31
    calc = atoms.calc
    assert 1 < calc.graph.builds < 31, calc.graph.builds  # reused, rebuilt


@pytest.mark.parametrize('driver', ['BFGS', 'FIRE', 'VelocityVerlet',
                                    'Langevin', 'NPTBerendsen'])
def test_calculator_drives_ase(driver):
    from ase.md.langevin import Langevin
    from ase.md.nptberendsen import NPTBerendsen
    from ase.md.verlet import VelocityVerlet
    from ase.optimize import BFGS, FIRE
    model = small_models()['schnet']
    if driver == 'NPTBerendsen':
        atoms = bulk('Cu', 'fcc', a=3.6, cubic=True) * (2, 2, 2)
    else:
        atoms = molecule('CH3CH2OH')
    atoms.rattle(0.02, seed=1)
    atoms.calc = SchNetCalculator(model, dtype=torch.float64)
    if driver not in ('BFGS', 'FIRE'):
        from ase.md.velocitydistribution import MaxwellBoltzmannDistribution
        MaxwellBoltzmannDistribution(atoms, temperature_K=300,
                                     rng=np.random.default_rng(2))
    start = atoms.get_potential_energy()
    if driver in ('BFGS', 'FIRE'):
        opt = (BFGS if driver == 'BFGS' else FIRE)(atoms, logfile=None)
        opt.run(fmax=1e-3, steps=5)
        assert atoms.get_potential_energy() < start
    elif driver == 'VelocityVerlet':
        VelocityVerlet(atoms, timestep=0.5 * units.fs).run(5)
    elif driver == 'Langevin':
        Langevin(atoms, 0.5 * units.fs, temperature_K=300, friction=0.01,
                 rng=np.random.default_rng(0)).run(5)
    else:
        volume = atoms.get_volume()
        NPTBerendsen(atoms, timestep=1.0 * units.fs, temperature_K=300,
                     pressure_au=1e4 * units.bar, taut=100 * units.fs,
                     taup=200 * units.fs,
                     compressibility_au=1e-6 / units.bar).run(5)
        assert atoms.get_volume() != volume
    assert np.isfinite(atoms.get_forces()).all()


def test_calculator_from_run_and_bad_input(emt_file, tmp_path):
    from pyg_schnet.cli import main

    from conftest import train_args
    run = tmp_path / 'run'
    assert main(train_args(emt_file, run, '--epochs', '1')) == 0
    calc = SchNetCalculator.from_run(run)
    atoms = bulk('Cu', 'fcc', a=3.6) * (2, 1, 1)
    atoms.calc = calc
    assert np.isfinite(atoms.get_potential_energy())
    assert atoms.get_stress().shape == (6, )
    bad = atoms.copy()
    bad.positions[1] = bad.positions[0]
    bad.calc = calc
    with pytest.raises(ValueError, match='overlapping'):
        bad.get_potential_energy()
    with pytest.raises(ValueError, match='dtype'):
        SchNetCalculator(calc.model, dtype=torch.int64)


def test_md_cli(emt_file, tmp_path, capsys):
    import ase.io

    from pyg_schnet.cli import main

    from conftest import train_args
    run = tmp_path / 'run'
    assert main(train_args(emt_file, run, '--epochs', '1')) == 0
    structure = tmp_path / 'start.extxyz'
    ase.io.write(structure, bulk('Cu', 'fcc', a=3.6) * (2, 1, 1))
    out = tmp_path / 'md.extxyz'
    assert main(['md', str(run), str(structure), '--steps', '20', '--dt',
                 '1', '--beads', '2', '--systems', '2', '--every', '10',
                 '--out', str(out)]) == 0
    assert 'ms per step' in capsys.readouterr().out
    assert len(ase.io.read(out, ':')) == 3 * 2
    assert (tmp_path / 'md.log').exists()
    assert main(['md', str(run), str(structure), '--steps', '5', '--out',
                 str(out)]) == 2
    assert 'pass --overwrite' in capsys.readouterr().err
    assert main(['md', str(run), str(structure), '--beads', '2',
                 '--thermostat', 'langevin', '--out', str(tmp_path / 'x.xyz'),
                 ]) == 2
    assert "'pile'" in capsys.readouterr().err
