"""Committees of models: exact means and deviations, the ASE calculator's
results, the MD engine's log, and the command line."""
import copy

import numpy as np
import pytest
import torch
from ase.build import bulk, molecule

from pyg_schnet.data import from_ase
from pyg_schnet.md import CommitteeCalculator, RingPolymerMD, SchNetCalculator
from pyg_schnet.models import Committee, SchNet

from conftest import small_models


def _two():
    torch.manual_seed(1)
    a = SchNet(hidden_channels=16, num_filters=16, num_interactions=2,
               num_gaussians=10, cutoff=4.0).double().eval()
    b = SchNet(hidden_channels=16, num_filters=16, num_interactions=2,
               num_gaussians=10, cutoff=5.0).double().eval()
    return a, b


@pytest.mark.parametrize('structure', ['molecule', 'crystal'])
def test_copies_of_one_model_have_no_deviation(structure):
    model = small_models()['schnet']
    atoms = molecule('CH3CH2OH') if structure == 'molecule' else \
        bulk('Cu', 'fcc', a=3.6) * 2
    alone = atoms.copy()
    alone.calc = SchNetCalculator(model, dtype=torch.float64)
    atoms.calc = CommitteeCalculator([model, copy.deepcopy(model),
                                      copy.deepcopy(model)],
                                     dtype=torch.float64)
    assert atoms.get_potential_energy() == pytest.approx(
        alone.get_potential_energy(), abs=1e-10)
    np.testing.assert_allclose(atoms.get_forces(), alone.get_forces(),
                               atol=1e-10)
    # Zero up to the round-off of a mean of three equal numbers.
    assert atoms.calc.get_property('energy_std') < 1e-9
    assert np.all(atoms.calc.get_property('forces_std') < 1e-12)


def test_two_models_give_the_analytic_mean_and_deviation():
    a, b = _two()
    data = from_ase(molecule('CH3CH2OH'), torch.float64)
    ea, fa = a(data, forces=True)
    eb, fb = b(data, forces=True)
    atoms = molecule('CH3CH2OH')
    atoms.calc = CommitteeCalculator([a, b], dtype=torch.float64)
    assert atoms.get_potential_energy() == pytest.approx(
        float(ea + eb) / 2, abs=1e-10)
    np.testing.assert_allclose(atoms.get_forces(), ((fa + fb) / 2).numpy(),
                               atol=1e-10)
    assert atoms.calc.get_property('energy_std') == pytest.approx(
        abs(float(ea - eb)) / 2, abs=1e-10)
    np.testing.assert_allclose(atoms.calc.get_property('forces_std'),
                               ((fa - fb).norm(dim=-1) / 2).numpy(),
                               atol=1e-10)


def test_the_committee_warns_past_the_force_threshold():
    a, b = _two()
    atoms = molecule('CH3CH2OH')
    atoms.calc = CommitteeCalculator([a, b], dtype=torch.float64,
                                     max_force_std=1e-6)
    with pytest.warns(UserWarning, match='the committee disagrees'):
        atoms.get_forces()


def test_rpmd_with_a_committee_logs_its_deviation(tmp_path):
    a, b = _two()
    md = RingPolymerMD(Committee([a, b]), molecule('H2O'), beads=2,
                       systems=2)
    log = tmp_path / 'md.log'
    md.run(10, log=str(log), every=5)
    lines = log.read_text().splitlines()
    assert lines[0].endswith('energy_std_eV forces_std_max_eV/A')
    obs = md.observables()
    values = [float(v) for v in lines[-1].split()]
    assert values[-1] == pytest.approx(float(obs['forces_std_max'][1]),
                                       abs=1e-6)
    assert float(obs['forces_std_max'].min()) > 0
    with pytest.raises(ValueError, match='at least two'):
        Committee([a])


def test_md_cli_with_a_committee(emt_file, tmp_path, capsys):
    import ase.io

    from pyg_schnet.cli import main

    from conftest import train_args
    runs = []
    for k in range(2):
        run = tmp_path / f'run{k}'
        assert main(train_args(emt_file, run, '--epochs', '1', '--seed',
                               str(k))) == 0
        runs.append(str(run))
    start = tmp_path / 'start.extxyz'
    ase.io.write(start, bulk('Cu', 'fcc', a=3.6) * (2, 1, 1))
    capsys.readouterr()
    assert main(['md', runs[0], str(start), '--committee', runs[1],
                 '--steps', '10', '--every', '5', '--out',
                 str(tmp_path / 'md.extxyz')]) == 0
    assert 'a committee of 2 models' in capsys.readouterr().out
    header = (tmp_path / 'md.log').read_text().splitlines()[0]
    assert 'forces_std_max_eV/A' in header
