"""Issue 11: what a new user meets — split defaults for files, readable
logs, where the results went, resumes that never shrink the record,
predictions that keep the input, chemical accuracy only where it means
something."""
import json
import os
import subprocess
import sys

import ase.io
import numpy as np
import pytest

from pyg_schnet.cli import main
from pyg_schnet.train.evaluate import is_molecular_energy, summary

from conftest import train_args

PYTHON = sys.executable


def _small(emt_file, run, *extra):
    # train_args without the explicit split: the file defaults apply.
    args = train_args(emt_file, run, *extra)
    for flag in ('--n-train', '--n-val', '--n-test'):
        k = args.index(flag)
        del args[k:k + 2]
    return args


def test_files_are_split_80_10_10_by_default(emt_file, tmp_path, capsys):
    assert main(_small(emt_file, tmp_path / 'run', '--epochs', '1')) == 0
    assert '32 train / 4 val / 4 test' in capsys.readouterr().out
    assert main(_small(emt_file, tmp_path / 'run2', '--epochs', '1',
                       '--n-train', '50%', '--n-val', '0.25')) == 0
    assert '20 train / 10 val / 10 test' in capsys.readouterr().out


def test_log_file_gets_one_plain_line_per_epoch(emt_file, tmp_path):
    args = _small(emt_file, tmp_path / 'run', '--epochs', '3')
    args.remove('--no-progress')  # not a terminal: plain lines anyway
    proc = subprocess.run([PYTHON, '-m', 'pyg_schnet', *args],
                          capture_output=True, text=True, timeout=600,
                          env=dict(os.environ, PYTHONUNBUFFERED='1'))
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = [line for line in proc.stdout.splitlines()
             if line.startswith('epoch ')]
    assert [line.split()[1] for line in lines] == ['1/3', '2/3', '3/3']
    assert all('val energy MAE' in line and ' s' in line for line in lines)
    assert '\r' not in proc.stdout and '\x1b[' not in proc.stdout
    # The end of the run says where the results are.
    assert f"results in {tmp_path / 'run'}: model.pt" in proc.stdout


def test_resume_never_shrinks_the_record(emt_file, tmp_path):
    run = tmp_path / 'run'
    assert main(_small(emt_file, run, '--epochs', '4')) == 0
    before = json.loads((run / 'results.json').read_text())
    # A resume with a budget too small for another epoch.
    assert main(['train', '--resume', '--run-dir', str(run), '--epochs',
                 '400', '--max-time', '0.0001', '--no-progress']) == 0
    after = json.loads((run / 'results.json').read_text())
    assert after['epochs_run'] >= before['epochs_run'] + 1
    assert after['train_minutes'] >= before['train_minutes']
    assert after['epochs'] <= after['epochs_run']
    assert after['stopped_by'] == 'time'


def test_predict_keeps_the_input_coordinates(emt_file, tmp_path):
    run = tmp_path / 'run'
    assert main(_small(emt_file, run, '--epochs', '1')) == 0
    images = ase.io.read(emt_file, ':')
    images[0].positions[0] += 1e-9  # beyond float32 resolution
    source = tmp_path / 'in.extxyz'
    ase.io.write(source, images)
    out = tmp_path / 'out.extxyz'
    assert main(['predict', str(run), str(source), '--out', str(out)]) == 0
    predicted = ase.io.read(out, ':')
    original = ase.io.read(source, ':')
    for a, b in zip(original, predicted, strict=True):
        np.testing.assert_array_equal(a.positions, b.positions)
        assert np.isfinite(b.get_potential_energy())


def test_chemical_accuracy_only_for_molecular_energies():
    base = dict(test_mae=0.1, test_rmse=0.2, test_count=10, epochs=1,
                epochs_run=1, train_minutes=0.1)
    molecules = dict(base, target='U0', unit='eV', periodic=False)
    assert is_molecular_energy(molecules)
    assert 'chemical accuracy' in summary(molecules)
    for other in (dict(base, target='energy', unit='eV', periodic=True),
                  dict(base, target='homo', unit='eV', periodic=False),
                  dict(base, target='mu', unit='D', periodic=False)):
        assert not is_molecular_energy(other)
        assert 'chemical accuracy' not in summary(other)


@pytest.mark.skipif(not os.path.exists('/dev/null'), reason='posix only')
def test_examples_write_only_into_their_folder(tmp_path):
    import shutil
    from pathlib import Path
    root = Path(__file__).resolve().parent.parent
    (tmp_path / 'alloys.extxyz').write_text('mine')
    proc = subprocess.run([PYTHON, str(root / 'examples' /
                                       'crystal_forces_stress.py')],
                          cwd=tmp_path, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (tmp_path / 'alloys.extxyz').read_text() == 'mine'
    assert sorted(p.name for p in tmp_path.iterdir()) == ['alloys.extxyz',
                                                          'runs']
    shutil.rmtree(tmp_path / 'runs')
