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
                          env=dict(os.environ, PYTHONUNBUFFERED='1',
                                   PYG_SCHNET_PROGRESS_SECONDS='0'))
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = [line for line in proc.stdout.splitlines()
             if line.startswith('epoch ') and ': batch ' not in line]
    assert [line.split()[1] for line in lines] == ['1/3', '2/3', '3/3']
    assert all('val energy MAE' in line and ' s' in line for line in lines)
    # Lines inside the epochs too (every batch here, every 30 s by
    # default): batches done, throughput, time left.
    inside = [line for line in proc.stdout.splitlines()
              if ': batch ' in line]
    assert inside and all('structures/s' in line for line in inside)
    assert any('left in the epoch' in line for line in inside)
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


# -- issue 18: a newcomer on a shared machine ---------------------------------

def test_the_thread_rule():
    from pyg_schnet.threads import SMALL_PAIRS, choose_threads, free_cores
    # Small work: one thread, idle or not (ethanol: 2 threads were 0.91x).
    assert choose_threads(36, cores=2, load=0.0) == 1
    assert choose_threads(SMALL_PAIRS - 1, cores=16, load=0.0) == 1
    # Batches and crystals on an idle machine: the free cores.
    assert choose_threads(None, cores=2, load=0.1) == 2
    assert choose_threads(20000, cores=8, load=2.6) == 5
    # A busy machine: one thread (2 threads were 2-5x slower there).
    assert choose_threads(20000, cores=2, load=1.2) == 1
    assert choose_threads(None, cores=2, load=6.0) == 1
    assert free_cores(2, 0.4) == 2 and free_cores(2, 0.6) == 1


def test_threads_option_and_omp_num_threads(monkeypatch):
    import torch

    from pyg_schnet.threads import set_threads
    before = torch.get_num_threads()
    try:
        monkeypatch.delenv('OMP_NUM_THREADS', raising=False)
        assert set_threads(3) == (3, '--threads')
        assert torch.get_num_threads() == 3
        monkeypatch.setenv('OMP_NUM_THREADS', '2')
        assert set_threads() == (2, 'OMP_NUM_THREADS')
        assert set_threads(1) == (1, '--threads')  # the option wins
        monkeypatch.setenv('OMP_NUM_THREADS', 'many')
        with pytest.raises(ValueError, match='OMP_NUM_THREADS must be'):
            set_threads()
        monkeypatch.delenv('OMP_NUM_THREADS')
        assert set_threads(pairs=10)[1] == 'rule'
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_md_engines_apply_the_thread_rule(monkeypatch):
    # The calculator and RingPolymerMD set torch's threads by the rule for
    # their work (ethanol: under 1,000 pairs, one thread), take a number,
    # or leave torch alone with threads=None.
    import torch
    from ase.build import molecule

    from pyg_schnet.md import RingPolymerMD, SchNetCalculator
    from pyg_schnet.models import SchNet
    monkeypatch.delenv('OMP_NUM_THREADS', raising=False)
    model = SchNet(hidden_channels=16, num_filters=16, num_interactions=1)
    before = torch.get_num_threads()
    try:
        for threads, expected in (('rule', 1), (2, 2), (None, 3)):
            torch.set_num_threads(3)
            atoms = molecule('CH3CH2OH')
            atoms.calc = SchNetCalculator(model, threads=threads)
            assert torch.get_num_threads() == 3  # nothing before a call
            atoms.get_forces()
            assert torch.get_num_threads() == expected, threads
            torch.set_num_threads(3)
            RingPolymerMD(model, molecule('H2O'), beads=2, threads=threads)
            assert torch.get_num_threads() == expected, threads
        with pytest.raises(ValueError, match="'threads' must be"):
            SchNetCalculator(model, threads=0)
        with pytest.raises(ValueError, match="'threads' must be"):
            RingPolymerMD(model, molecule('H2O'), threads='all')
    finally:
        torch.set_num_threads(before)


def test_results_record_the_threads(emt_file, tmp_path):
    run = tmp_path / 'run'
    assert main(_small(emt_file, run, '--epochs', '1', '--threads',
                       '1')) == 0
    assert json.loads((run / 'results.json').read_text())['threads'] == 1


def test_the_main_job_is_a_fixed_number_of_epochs():
    from pyg_schnet.train.config import MAIN_JOB_EPOCHS, TrainConfig
    config = TrainConfig()
    assert config.epochs == MAIN_JOB_EPOCHS and config.max_time is None
    assert config.dataset == 'qm9' and config.seed == 0


def test_a_time_budget_that_cuts_the_run_says_so(emt_file, tmp_path, capsys):
    args = _small(emt_file, tmp_path / 'run', '--epochs', '50')
    args[args.index('--max-time') + 1] = '0.001'
    assert main(args) == 0
    out = capsys.readouterr().out
    assert 'ended this run after 1 of the 50 planned epochs' in out
    assert "not the README's number" in out


def test_running_the_main_job_again_makes_a_new_folder(emt_file, tmp_path,
                                                       monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    args = _small(emt_file, tmp_path / 'unused', '--epochs', '1')
    k = args.index('--run-dir')
    del args[k:k + 2]
    assert main(args) == 0
    assert main(args) == 0
    out = capsys.readouterr().out
    assert 'runs/latest already holds a run: this one goes to ' \
        'runs/latest-2' in out
    assert (tmp_path / 'runs' / 'latest' / 'model.pt').exists()
    assert (tmp_path / 'runs' / 'latest-2' / 'model.pt').exists()


def test_a_failed_train_leaves_no_empty_folder(tmp_path, capsys):
    bad = tmp_path / 'bad.extxyz'
    bad.write_text('not a structure file\n')
    run = tmp_path / 'run'
    assert main(['train', '--dataset', str(bad), '--run-dir', str(run),
                 '--root', str(tmp_path / 'cache')]) == 2
    assert not run.exists()


def test_the_command_line_starts_without_torch():
    # What lets --help answer in well under a second (benchmarks/startup.py
    # times it: 0.3 s against 5 s for `import torch` on a loaded machine).
    code = ('import sys, pyg_schnet.cli; '
            'from pyg_schnet.cli import build_parser; build_parser(); '
            'print("torch" in sys.modules)')
    proc = subprocess.run([PYTHON, '-c', code], capture_output=True,
                          text=True, timeout=120)
    assert proc.stdout.strip() == 'False', proc.stderr


def test_options_are_never_abbreviated_and_typos_get_suggestions(capsys):
    from pyg_schnet import __version__
    for argv, expected in ((['train', '--epcohs', '3'],
                            '--epcohs (did you mean --epochs?)'),
                           (['train', '--epoch', '1'],
                            '--epoch (did you mean --epochs?)'),
                           (['trian'], "did you mean 'train'?"),
                           (['md', 'm', 's', '--out', 'x.xyz', '--bead',
                             '2'], '--bead (did you mean --beads?)')):
        with pytest.raises(SystemExit) as info:
            main(argv)
        assert info.value.code == 2
        err = capsys.readouterr().err
        assert expected in err, err
        usage = 'pyg-schnet ' + argv[0] if argv[0] != 'trian' else \
            'pyg-schnet'
        assert f'usage: {usage}' in err
    with pytest.raises(SystemExit) as info:
        main(['--version'])
    assert info.value.code == 0
    assert capsys.readouterr().out.strip() == f'pyg-schnet {__version__}'


def test_progress_lines_inside_an_epoch():
    from types import SimpleNamespace

    from pyg_schnet.train.progress import ProgressLog, progress_line
    line = progress_line(3, 25, 100, 313, 50.0, 3200, epoch_seconds=170.0)
    assert line.startswith('epoch 3/25: batch 100/313 (32 %), 64 '
                           'structures/s')
    assert '1:46 left in the epoch, about 1:04:06 in the run' in line
    lines = []
    callback = ProgressLog(lines.append, seconds=0.0)
    trainer = SimpleNamespace(is_global_zero=True, num_training_batches=4,
                              current_epoch=0, max_epochs=2)
    callback.on_train_epoch_start(trainer, None)
    for k in range(4):
        callback.on_train_batch_end(trainer, None, None,
                                    SimpleNamespace(num_graphs=8), k)
    assert [line.split(':')[0] for line in lines] == ['epoch 1/2'] * 3
    assert 'batch 3/4' in lines[-1]


def test_predict_prints_a_pretrained_models_card(capsys):
    from pyg_schnet.models import pretrained_card
    assert main(['predict', '--card', 'schnet-qm9-U0']) == 0
    out = capsys.readouterr().out
    card = pretrained_card('schnet-qm9-U0')
    assert out.splitlines()[0] == 'schnet-qm9-U0'
    for key in card:
        assert f'  {key}: ' in out
    assert f"test_mae_eV: {card['test_mae_eV']}" in out


def test_explain_atoms_prints_absolute_and_reference_subtracted(tmp_path,
                                                                capsys):
    out = tmp_path / 'atoms.png'
    assert main(['explain', 'atoms', 'schnet-qm9-U0', '--smiles', 'CO',
                 '--out', str(out)]) == 0
    lines = capsys.readouterr().out.splitlines()
    header = next(line for line in lines if 'absolute' in line)
    assert 'free atom' in header and 'absolute - free atom' in header
    assert 'the picture shows the last column' in header
    rows = [line.split() for line in lines
            if line.strip()[:1].isdigit() and len(line.split()) == 5]
    assert len(rows) == 6  # C, O and four H
    for _, _, absolute, reference, relative in rows:
        assert float(absolute) - float(reference) == pytest.approx(
            float(relative), abs=2e-4)
    assert out.exists()


def test_plots_of_a_one_epoch_run_show_their_points(tmp_path):
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    from pyg_schnet.train.plots import _log_axis, parity_plot
    fig, ax = plt.subplots()
    _log_axis(ax, [0.21, 0.23])  # within a factor 3: linear, labelled
    assert ax.get_yscale() == 'linear'
    _log_axis(ax, [0.01, 0.5])
    assert ax.get_yscale() == 'log'
    plt.close(fig)
    test = {'reference': [-1.0, -2.0, -3.0], 'predicted': [-1.1, -1.9, -3.0],
            'offset': None, 'num_atoms': [3, 3, 3]}
    parity_plot(test, tmp_path / 'parity.png', 'energy', 'eV')
    assert (tmp_path / 'parity.png').stat().st_size > 10000


def test_license_and_citation():
    import yaml
    root = __import__('pathlib').Path(__file__).resolve().parent.parent
    assert (root / 'LICENSE').read_text().startswith('MIT License')
    citation = yaml.safe_load((root / 'CITATION.cff').read_text())
    dois = {ref.get('doi') for ref in citation['references']}
    assert {'10.1063/1.5019779', '10.1038/ncomms13890'} <= dois
    readme = (root / 'README.md').read_text()
    assert '## Citing' in readme and '10.1063/1.5019779' in readme and \
        '10.1038/ncomms13890' in readme
    assert (root / 'docs' / 'installing-gpu.md').exists()


def test_busy_cpus_sees_a_running_process_and_forgets_it():
    import multiprocessing
    import time

    from pyg_schnet.threads import busy_cpus
    burner = multiprocessing.Process(target=_burn, daemon=True)
    burner.start()
    try:
        time.sleep(0.3)
        during = busy_cpus()
    finally:
        burner.terminate()
        burner.join()
    time.sleep(0.3)
    after = busy_cpus()
    assert during >= 1
    # No memory of it (the 1-minute load average would keep it).
    assert after <= during - 1


def _burn():  # pragma: no cover - runs in the child
    while True:
        pass
