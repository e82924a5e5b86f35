"""The MD engine's guarantees: bad input refused before the first step,
exploding dynamics stopped, interrupted runs never replace a complete
file, constraints honoured, the caller's model untouched; and the pure
ring-polymer functions against exact answers."""
import math

import numpy as np
import pytest
import torch
from ase import Atoms, units
from ase.build import molecule
from ase.constraints import FixAtoms, FixBondLength

from pyg_schnet.md import (
    MDInterrupted,
    MDRunError,
    RingPolymerMD,
    SchNetCalculator,
)
from pyg_schnet.md.ring_polymer import (
    bead_kinetic,
    free_ring_polymer_step,
    from_modes,
    mode_frequencies,
    normal_modes,
    pile_friction,
    spring_energy,
    thermostat_step,
    to_modes,
)

from conftest import small_models
from test_md import MASS, HarmonicWell, K, T, finite_p_x2


class FailingAfter(torch.nn.Module):
    r"""A model that works for :obj:`calls` evaluations, then raises (or
    sends Ctrl-C)."""
    def __init__(self, model, calls: int, error=RuntimeError):
        super().__init__()
        self.inner = model
        self.cutoff = model.cutoff
        self.calls = calls
        self.error = error

    def evaluate(self, *args, **kwargs):
        self.calls -= 1
        if self.calls < 0:
            raise self.error('the model failed')
        return self.inner.evaluate(*args, **kwargs)


def _water():
    return molecule('H2O')


# -- files: only a finished run takes the final name (case 2) ------------

@pytest.mark.parametrize('error', [RuntimeError, KeyboardInterrupt])
def test_a_failed_run_never_replaces_a_complete_trajectory(tmp_path, error):
    import ase.io
    model = small_models()['schnet']
    traj, log = tmp_path / 'md.extxyz', tmp_path / 'md.log'
    RingPolymerMD(model, _water(), beads=2).run(
        40, trajectory=str(traj), log=str(log), every=10)
    before = traj.read_bytes(), log.read_bytes()
    assert len(ase.io.read(traj, ':')) == 5
    md = RingPolymerMD(FailingAfter(model, 15, error), _water(), beads=2)
    expected = MDInterrupted if error is KeyboardInterrupt else MDRunError
    with pytest.raises(expected) as info:
        md.run(40, trajectory=str(traj), log=str(log), every=5)
    assert (traj.read_bytes(), log.read_bytes()) == before
    partial = tmp_path / 'md.extxyz.partial'
    assert str(partial) in str(info.value) and 'after 14 of 40' in \
        str(info.value)
    assert info.value.partial_files == [str(partial), str(log) + '.partial']
    # What was written up to the failure is there and readable.
    assert len(ase.io.read(partial, ':', format='extxyz')) == 3  # 0, 5, 10


# -- input checks (case 4) ---------------------------------------------------

@pytest.mark.parametrize('change, match', [
    (lambda a: a.positions.__setitem__(1, a.positions[0]),
     'overlapping atoms: atoms 1 and 0'),
    (lambda a: a.positions.__setitem__((1, 0), np.nan), 'not finite'),
    (lambda a: a.numbers.__setitem__(0, 0), 'atomic number 0'),
    (lambda a: a.numbers.__setitem__(0, 150), 'atomic number 150'),
])
def test_md_refuses_bad_structures_before_the_first_step(change, match):
    atoms = _water()
    change(atoms)
    with pytest.raises(ValueError, match=match):
        RingPolymerMD(small_models()['schnet'], atoms, beads=2)


def test_md_refuses_a_singular_cell():
    atoms = _water()
    atoms.cell = [[3.0, 0, 0], [6.0, 0, 0], [0, 0, 3.0]]
    atoms.pbc = True
    with pytest.raises(ValueError, match='singular cell'):
        RingPolymerMD(small_models()['schnet'], atoms)


def test_md_names_the_bad_structure_of_a_batch():
    good, bad = _water(), _water()
    bad.positions[2] = bad.positions[0]
    with pytest.raises(ValueError, match='structure 1: overlapping'):
        RingPolymerMD(small_models()['schnet'], [good, bad])


def test_md_refuses_a_batch_larger_than_the_memory(monkeypatch):
    monkeypatch.setenv('PYG_SCHNET_MEMORY_LIMIT_GB', '0.001')
    with pytest.raises(MemoryError, match=r'64 systems x 8 beads .* would '
                       r'need about'):
        RingPolymerMD(small_models()['schnet'], molecule('C6H6'), beads=8,
                      systems=64)


# -- the blow-up watch (case 5) ----------------------------------------------

def test_exploding_dynamics_stop_with_a_clear_error(tmp_path):
    torch.manual_seed(0)
    model = small_models()['schnet']
    md = RingPolymerMD(model, molecule('CH3CH2OH'), timestep=50.0,
                       thermostat='none', temperature=3000.0)
    traj = tmp_path / 'md.extxyz'
    with pytest.raises(MDRunError, match='blew up') as info:
        md.run(2000, trajectory=str(traj), every=10)
    assert md.step_count < 2000
    assert 'max_drift' in str(info.value) or 'max_temperature' in \
        str(info.value) or 'finite' in str(info.value)
    assert not traj.exists() and (tmp_path / 'md.extxyz.partial').exists()


class Tethered(torch.nn.Module):
    r""":math:`V = \sum_i \frac12 k |\mathbf{r}_i - \mathbf{r}^0_i|^2`
    (eV, Å): every atom on a spring to its starting point, a potential in
    which a sane run stays near the temperature it starts at."""
    cutoff = 1.0

    def __init__(self, atoms, k: float = 5.0):
        super().__init__()
        self.k = k
        self.register_buffer('centre', torch.as_tensor(atoms.positions))

    def evaluate(self, z, pos, edge_index, batch, num_graphs, cell=None,
                 cell_offsets=None, symmetric=False, forces=True,
                 stress=False, energies=False):
        d = pos - self.centre.to(pos.dtype).repeat(num_graphs, 1)
        energy = torch.zeros(num_graphs, dtype=pos.dtype).index_add(
            0, batch, 0.5 * self.k * (d**2).sum(dim=-1))
        return {'energy': energy, 'forces': -self.k * d}


def test_the_drift_threshold_is_a_parameter():
    atoms = molecule('CH3CH2OH')
    md = RingPolymerMD(Tethered(atoms), atoms, timestep=2.0,
                       thermostat='none', max_drift=1e-9)
    with pytest.raises(MDRunError, match=r'max_drift = 1e-09'):
        for _ in range(50):
            md.step()
    for thermostat, beads in (('none', 1), ('langevin', 1), ('pile', 8)):
        calm = RingPolymerMD(Tethered(atoms), atoms, timestep=0.5,
                             thermostat=thermostat, beads=beads)
        for _ in range(400):
            calm.step()  # a sane run is not stopped by the defaults


def test_the_temperature_threshold():
    # The random small model is far from its minimum at the G2 geometry:
    # the molecule heats up past 600 K within a few fs.
    md = RingPolymerMD(small_models()['schnet'], molecule('CH3CH2OH'),
                       temperature=300.0, timestep=0.25, thermostat='none',
                       max_temperature=600.0)
    with pytest.raises(MDRunError, match='max_temperature = 600 K'):
        md.run(200)


# -- constraints (case 8) ----------------------------------------------------

@pytest.mark.parametrize('beads', [1, 4])
def test_fixed_atoms_do_not_move(beads):
    atoms = molecule('CH3CH2OH')
    atoms.set_constraint(FixAtoms(indices=[0, 2]))
    start = torch.as_tensor(atoms.positions)
    md = RingPolymerMD(small_models()['schnet'], atoms, beads=beads,
                       temperature=500.0)
    md.run(100)
    for k in (0, 2):
        assert torch.equal(md.q[0, :, k], start[k].expand(beads, 3))
    assert float((md.q[0, :, 1] - start[1]).norm(dim=-1).max()) > 1e-3
    assert md.dof == 3 * (len(atoms) - 2)
    # The snapshot keeps the constraint.
    assert md.snapshot().constraints


def test_other_constraints_are_refused():
    atoms = molecule('CH3CH2OH')
    atoms.set_constraint(FixBondLength(0, 1))
    with pytest.raises(ValueError, match='FixBondLengths is not supported'):
        RingPolymerMD(small_models()['schnet'], atoms)


# -- dtype, device and the caller's model (case 9) ---------------------------

@pytest.mark.parametrize('dtype', [torch.float32, torch.float64])
def test_the_engine_owns_its_models_dtype(dtype):
    model = small_models()['schnet'].float().train()
    md = RingPolymerMD(model, _water(), beads=2, dtype=dtype)
    md.run(5)
    assert md.q.dtype == dtype
    assert next(model.parameters()).dtype == torch.float32 and model.training
    calc = SchNetCalculator(model, dtype=torch.float64)
    atoms = _water()
    atoms.calc = calc
    atoms.get_forces()
    assert next(model.parameters()).dtype == torch.float32 and model.training


# -- the pure ring-polymer functions, exact -----------------------------------

def test_free_ring_polymer_step_is_the_exact_flow():
    # One 1-D particle of P beads on springs: the linear system
    # d/dt (q, p) = (p/m, -m w_P^2 L q), solved by the matrix exponential.
    from scipy.linalg import expm
    P, m, omega_p, dt = 6, 2.0, 0.7, 0.9
    L = 2 * np.eye(P) - np.roll(np.eye(P), 1, 0) - np.roll(np.eye(P), -1, 0)
    A = np.block([[np.zeros((P, P)), np.eye(P) / m],
                  [-m * omega_p**2 * L, np.zeros((P, P))]])
    rng = np.random.default_rng(0)
    q0, p0 = rng.normal(size=P), rng.normal(size=P)
    exact = expm(A * dt) @ np.concatenate([q0, p0])
    q = torch.tensor(q0).view(1, P, 1, 1).expand(1, P, 1, 3).clone()
    p = torch.tensor(p0).view(1, P, 1, 1).expand(1, P, 1, 3).clone()
    q1, p1 = free_ring_polymer_step(
        q, p, torch.tensor([m], dtype=torch.float64),
        mode_frequencies(P, omega_p), dt, normal_modes(P))
    np.testing.assert_allclose(q1[0, :, 0, 0].numpy(), exact[:P],
                               rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(p1[0, :, 0, 0].numpy(), exact[P:],
                               rtol=1e-12, atol=1e-12)
    # Energy of the free ring polymer is conserved.
    masses = torch.tensor([m], dtype=torch.float64)
    before = bead_kinetic(p, masses).sum() + spring_energy(q, masses,
                                                           omega_p).sum()
    after = bead_kinetic(p1, masses).sum() + spring_energy(q1, masses,
                                                           omega_p).sum()
    torch.testing.assert_close(after, before, rtol=1e-12, atol=0)


def test_thermostat_step_exact_limits():
    P = 4
    C = normal_modes(P)
    masses = torch.tensor([1.5, 12.0], dtype=torch.float64)
    gamma = pile_friction(mode_frequencies(P, 2.0), tau0=10.0)
    gen = torch.Generator().manual_seed(0)
    p = torch.randn(2, P, 2, 3, generator=gen, dtype=torch.float64)
    zero = torch.zeros_like(p)
    # Without noise, each normal mode decays by exp(-gamma_k dt).
    out = thermostat_step(p, masses, gamma, 0.5, 0.3, zero, C)
    expected = from_modes(torch.exp(-gamma * 0.3).view(1, -1, 1, 1) *
                          to_modes(p, C), C)
    torch.testing.assert_close(out, expected, rtol=1e-13, atol=1e-13)
    # Infinite friction draws fresh momenta sqrt(m / beta_P) xi.
    noise = torch.randn(2, P, 2, 3, generator=gen, dtype=torch.float64)
    out = thermostat_step(p, masses, torch.full((P, ), 1e30), 0.5, 1.0,
                          noise, C)
    torch.testing.assert_close(
        to_modes(out, C), torch.sqrt(masses / 0.5).view(1, 1, -1, 1) *
        noise, rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize('P', [1, 4])
def test_kinetic_estimators_and_temperature_are_exact_on_an_oscillator(P):
    # Harmonic oscillator: both estimators average to the finite-P kinetic
    # energy, which equals <V> = (3/2) k <x^2>_P (virial theorem), and the
    # temperature observable averages to T.
    systems, steps = 32, 3000
    md = RingPolymerMD(HarmonicWell(K), Atoms('H', positions=[[0, 0, 0]],
                                              masses=[MASS]), beads=P,
                       temperature=T, timestep=1.0, tau0=20.0,
                       thermostat='pile' if P > 1 else 'langevin',
                       systems=systems, seed=3)
    for _ in range(300):
        md.step()
    sums = {k: torch.zeros(systems, dtype=torch.float64)
            for k in ('kinetic_primitive', 'kinetic_virial', 'temperature')}
    count = 0
    for k in range(steps):
        md.step()
        if k % 3 == 0:
            obs = md.observables()
            for key in sums:
                sums[key] += obs[key]
            count += 1
    exact_k = 1.5 * K * finite_p_x2(P)
    for key, exact in (('kinetic_primitive', exact_k),
                       ('kinetic_virial', exact_k), ('temperature', T)):
        values = sums[key] / count
        mean = float(values.mean())
        error = float(values.std()) / math.sqrt(systems)
        assert abs(mean - exact) < 4 * error + 2e-3 * exact, \
            (key, mean, error, exact)
        assert error < 0.03 * exact
    # The quantum oscillator is far from classical here: at P = 4 the
    # kinetic energy is well above (3/2) k_B T, which P = 1 gives.
    classical = 1.5 * units.kB * T
    if P == 1:
        assert exact_k == pytest.approx(classical, rel=1e-12)
    else:
        assert exact_k > 1.5 * classical
