"""pyg_schnet as an OpenMM force: the calculator's energy and forces after
the unit conversion, and (slow) the same thermal averages from OpenMM's
Langevin and RPMD integrators as from this package's engine."""
import numpy as np
import pytest
import torch
from ase.build import bulk, molecule

from pyg_schnet.md import RingPolymerMD, SchNetCalculator
from pyg_schnet.models import SchNet, load_pretrained

openmm = pytest.importorskip(
    'openmm', reason="OpenMM is not installed (pip install -e '.[openmm]')")
unit = pytest.importorskip('openmm.unit')

from pyg_schnet.md.openmm import (  # noqa: E402
    EV_TO_KJ_PER_MOL,
    ModelEvaluator,
    openmm_system,
)


def _context(system, integrator):
    return openmm.Context(system, integrator,
                          openmm.Platform.getPlatformByName('Reference'))


def _energy_forces(context):
    state = context.getState(getEnergy=True, getForces=True)
    energy = state.getPotentialEnergy().value_in_unit(
        unit.kilojoule_per_mole) / EV_TO_KJ_PER_MOL
    forces = state.getForces(asNumpy=True).value_in_unit(
        unit.kilojoule_per_mole / unit.angstrom) / EV_TO_KJ_PER_MOL
    return energy, forces


@pytest.mark.parametrize('periodic', [False, True])
def test_one_evaluation_equals_the_calculator(periodic):
    torch.manual_seed(0)
    model = SchNet(16, 16, 2, 12, cutoff=4.0).double().eval()
    if periodic:
        atoms = bulk('Cu', 'fcc', a=3.615, cubic=True).repeat((2, 2, 2))
    else:
        atoms = molecule('CH3CH2OH')
    atoms.rattle(0.05, seed=2)
    system = openmm_system(model, atoms)
    context = _context(system, openmm.VerletIntegrator(0.5 *
                                                       unit.femtosecond))
    context.setPositions(atoms.positions / 10.0 * unit.nanometer)
    energy, forces = _energy_forces(context)
    atoms.calc = SchNetCalculator(model, dtype=torch.float64)
    assert energy == pytest.approx(atoms.get_potential_energy(), abs=1e-5)
    assert np.abs(forces - atoms.get_forces()).max() < 1e-5


def test_units_are_converted_in_one_place():
    torch.manual_seed(0)
    model = SchNet(8, 8, 1, 6, cutoff=3.0).double().eval()
    water = molecule('H2O')
    evaluator = ModelEvaluator(model, water.numbers)
    energy, forces = evaluator.energy_forces(water.positions / 10.0)
    water.calc = SchNetCalculator(model, dtype=torch.float64)
    # 1 eV = 96.485 kJ/mol; 1 eV/Å = 964.85 kJ/(mol nm)
    assert energy == pytest.approx(water.get_potential_energy() * 96.4853,
                                   rel=1e-5)
    assert np.allclose(forces, water.get_forces() * 964.853, rtol=1e-5)


def _block_error(series, blocks=10):
    parts = np.array_split(np.asarray(series), blocks)
    means = np.array([p.mean() for p in parts])
    return means.std(ddof=1) / np.sqrt(blocks)


def _bond_lengths(positions):
    # water: O is atom 0
    return np.linalg.norm(positions[..., 1:, :] - positions[..., :1, :],
                          axis=-1).ravel()


@pytest.mark.slow
@pytest.mark.parametrize('beads', [1, 4])
def test_thermal_averages_equal_those_of_openmm(beads):
    r"""Water with the pretrained QM9 model at 300 K: ⟨V⟩ and the O-H
    bond-length mean from OpenMM (LangevinMiddle for P = 1, its
    RPMDIntegrator for P = 4) and from RingPolymerMD (Langevin / PILE-L)
    agree within 4 combined standard errors (block averages)."""
    model, _ = load_pretrained('schnet-qm9-U0')
    water = molecule('H2O')
    steps, skip, every = (4000, 500, 5) if beads == 1 else (2000, 400, 5)
    system = openmm_system(model, water)
    friction = 1.0 / unit.picosecond
    if beads == 1:
        integrator = openmm.LangevinMiddleIntegrator(
            300 * unit.kelvin, friction, 0.5 * unit.femtosecond)
    else:
        integrator = openmm.RPMDIntegrator(beads, 300 * unit.kelvin,
                                           friction, 0.5 * unit.femtosecond)
    integrator.setRandomNumberSeed(1)
    context = _context(system, integrator)
    if beads == 1:
        context.setPositions(water.positions / 10.0 * unit.nanometer)
        context.setVelocitiesToTemperature(300 * unit.kelvin, 1)
    else:
        for k in range(beads):
            integrator.setPositions(k, water.positions / 10.0 *
                                    unit.nanometer)
    energies, bonds = [], []
    for step in range(steps):
        integrator.step(1)
        if step >= skip and step % every == 0:
            if beads == 1:
                state = context.getState(getEnergy=True, getPositions=True)
                states = [state]
            else:
                states = [integrator.getState(k, getEnergy=True,
                                              getPositions=True)
                          for k in range(beads)]
            energies.append(np.mean([
                s.getPotentialEnergy().value_in_unit(
                    unit.kilojoule_per_mole) for s in states]) /
                EV_TO_KJ_PER_MOL)
            bonds.append(np.mean(_bond_lengths(np.stack([
                s.getPositions(asNumpy=True).value_in_unit(unit.angstrom)
                for s in states]))))
    md = RingPolymerMD(model, water, beads=beads, temperature=300.0,
                       timestep=0.5, thermostat='langevin' if beads == 1
                       else 'pile', tau0=1000.0, seed=1)
    ours_e, ours_b = [], []
    for step in range(steps):
        md.step()
        if step >= skip and step % every == 0:
            ours_e.append(float(md.observables()['potential'][0]))
            ours_b.append(float(np.mean(_bond_lengths(
                md.q[0].double().numpy()))))
    for theirs, ours in ((energies, ours_e), (bonds, ours_b)):
        error = np.hypot(_block_error(theirs), _block_error(ours))
        assert abs(np.mean(theirs) - np.mean(ours)) < 4 * error + 1e-9, \
            (np.mean(theirs), np.mean(ours), error)
