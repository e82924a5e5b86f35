"""Training: loss, statistics, runs through the CLI, checkpoints, resume
after a kill, DDP."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from pyg_schnet.cli import build_parser, main
from pyg_schnet.data import QM9
from pyg_schnet.models import load_model
from pyg_schnet.train import EnergyForceLoss, TrainConfig
from pyg_schnet.train.datasets import fit_atomref, target_statistics
from pyg_schnet.train.history import epoch_metrics

from conftest import train_args

TESTS = Path(__file__).parent
PYTHON = sys.executable


def test_energy_force_loss_is_the_thesis_formula():
    gen = torch.Generator().manual_seed(0)
    e, e_ref = torch.randn(3, generator=gen), torch.randn(3, generator=gen)
    f, f_ref = torch.randn(7, 3, generator=gen), torch.randn(
        7, 3, generator=gen)
    out = EnergyForceLoss(rho=0.2)(e, e_ref, f, f_ref)
    expected = 0.2 * ((e - e_ref)**2).mean() + \
        ((f - f_ref)**2).sum(dim=1).mean()
    torch.testing.assert_close(out['loss'], expected)
    energy_only = EnergyForceLoss(rho=0.2)(e, e_ref)
    torch.testing.assert_close(energy_only['loss'], ((e - e_ref)**2).mean())


@pytest.fixture(scope='module')
def qm9_small(tmp_path_factory):
    return QM9(str(tmp_path_factory.mktemp('qm9')), max_molecules=300)


def test_fit_atomref_is_least_squares_on_composition(qm9_small):
    train = qm9_small[:200]
    ref = fit_atomref(train, 'U0')
    counts = np.array([[int((d.z == z).sum()) for z in (1, 6, 7, 8, 9)]
                       for d in train])
    energies = np.array([d.U0.item() for d in train])
    used = counts.any(axis=0)
    solution = np.linalg.lstsq(counts[:, used], energies, rcond=None)[0]
    np.testing.assert_allclose(ref[np.array([1, 6, 7, 8, 9])[used]].numpy(),
                               solution, rtol=1e-8)


def test_target_statistics_are_per_atom(qm9_small):
    train = qm9_small[:100]
    atomref = torch.zeros(101, dtype=torch.float64)
    atomref[[1, 6, 7, 8, 9]] = torch.tensor([-13.6, -1029.9, -1485.3,
                                             -2042.6, -2713.5],
                                            dtype=torch.float64)
    mean, std = target_statistics(train, 'U0', 'sum', atomref)
    per_atom = [(d.U0.item() - atomref[d.z].sum().item()) / d.num_nodes
                for d in train]
    assert mean == pytest.approx(np.mean(per_atom), rel=1e-10)
    assert std == pytest.approx(np.std(per_atom, ddof=1), rel=1e-10)
    mean, _ = target_statistics(train, 'gap', 'mean')
    assert mean == pytest.approx(np.mean([d.gap.item() for d in train]))


def _train_args(emt_file, run_dir, *extra):
    return train_args(emt_file, run_dir, *extra)


def test_cli_trains_energy_and_forces_and_exports(emt_file, tmp_path,
                                                  capsys):
    run = tmp_path / 'run'
    assert main(_train_args(emt_file, run, '--epochs', '12')) == 0
    printed = capsys.readouterr().out
    assert 'energy + forces' in printed and 'test forces MAE' in printed
    results = json.loads((run / 'results.json').read_text())
    metrics = epoch_metrics(run / 'metrics.csv')
    losses = metrics['train_loss']
    assert losses[max(losses)] < 0.5 * losses[1]  # epochs count from 1
    for epoch, mse in metrics['val_energy_mse'].items():
        assert metrics['val_energy_rmse'][epoch] == pytest.approx(mse**0.5)
    for name in ('config.yaml', 'split.pt', 'model.pt', 'parity.png',
                 'learning_curve.png', 'checkpoints/last.ckpt',
                 'checkpoints/best.ckpt'):
        assert (run / name).exists(), name

    # The exported model is weights and hyper-parameters only.
    blob = torch.load(run / 'model.pt', weights_only=True)
    assert blob['model'] == 'schnet' and blob['metadata']['forces']
    model, meta = load_model(run / 'model.pt')
    assert meta['unit'] == 'eV' and model.use_atomref  # fitted references
    config = yaml.safe_load((run / 'config.yaml').read_text())
    assert config['n_train'] == 24 and config['features'] == 16

    # `evaluate` reproduces the test MAE of the run.
    assert main(['evaluate', str(run)]) == 0
    line = capsys.readouterr().out.splitlines()[0]
    assert f"{results['test_mae']:.4f}" in line

    # `predict` gives energies and forces for a structure file.
    out = tmp_path / 'pred.extxyz'
    assert main(['predict', str(run), str(emt_file), '--forces', '--stress',
                 '--out', str(out)]) == 0
    import ase.io
    images = ase.io.read(out, ':')
    assert len(images) == 40
    assert images[0].get_forces().shape == (4, 3)


def test_cli_refuses_to_overwrite_a_run(emt_file, tmp_path, capsys):
    run = tmp_path / 'run'
    assert main(_train_args(emt_file, run, '--epochs', '1')) == 0
    assert main(_train_args(emt_file, run, '--epochs', '1')) == 2
    assert 'already holds a run' in capsys.readouterr().err


def test_yaml_config_is_overridden_by_flags(emt_file, tmp_path):
    config = tmp_path / 'c.yaml'
    config.write_text('epochs: 1\nlr: 0.01\nbatch_size: 4\nseed: 3\n')
    run = tmp_path / 'run'
    assert main(_train_args(emt_file, run, '--config', str(config),
                            '--seed', '5')) == 0
    saved = TrainConfig.load(run / 'config.yaml')
    assert (saved.epochs, saved.seed, saved.batch_size) == (1, 5, 8)
    assert saved.lr == 3e-3  # the flag wins over the file
    bad = tmp_path / 'bad.yaml'
    bad.write_text('epochz: 3\n')
    with pytest.raises(ValueError, match='unknown configuration keys'):
        TrainConfig.load(bad)
    for text, name in (('readout: max', 'readout'),
                       ('atomref: qm9', 'atomref'), ('device: tpu', 'device')):
        bad.write_text(text + '\n')
        with pytest.raises(ValueError, match=f'{name} must be one of'):
            TrainConfig.load(bad)


def test_readout_option_trains_an_intensive_model(emt_file, tmp_path):
    run = tmp_path / 'run'
    assert main(_train_args(emt_file, run, '--epochs', '1', '--readout',
                            'mean')) == 0
    model, meta = load_model(run / 'model.pt')
    assert model.readout.aggr == 'mean' and meta['readout'] == 'mean'
    assert not model.use_atomref  # references need an extensive readout


def test_resume_after_kill_loses_no_epoch(emt_file, tmp_path):
    run = tmp_path / 'run'
    args = _train_args(emt_file, run, '--epochs', '8', '--batch-size', '2')
    env = dict(os.environ, PYTHONUNBUFFERED='1')
    proc = subprocess.Popen([PYTHON, '-m', 'pyg_schnet', *args], env=env,
                            stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    last = run / 'checkpoints' / 'last.ckpt'
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        if last.exists():
            epoch = torch.load(last, weights_only=True)['epoch']
            if epoch >= 1:
                break
        time.sleep(0.2)
    assert proc.poll() is None, \
        f'the run ended before it could be killed: {proc.stderr.read()}'
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    killed_at = torch.load(last, weights_only=True)['epoch']
    assert killed_at < 7
    before = epoch_metrics(run / 'metrics.csv')['val_loss']

    assert main(['train', '--resume', '--run-dir', str(run),
                 '--no-progress']) == 0
    metrics = epoch_metrics(run / 'metrics.csv')
    assert sorted(metrics['val_loss']) == list(range(1, 9))
    assert sorted(metrics['train_loss']) == list(range(1, 9))
    # The epochs done before the kill are kept, not trained again.
    for epoch in range(1, killed_at + 2):  # epochs count from 1
        assert metrics['val_loss'][epoch] == before[epoch]
    final = torch.load(last, weights_only=True)
    assert final['epoch'] == 7
    assert (run / 'model.pt').exists()


def test_resume_without_a_run_is_an_error(tmp_path, capsys):
    assert main(['train', '--resume', '--run-dir', str(tmp_path)]) == 2
    assert 'nothing to resume' in capsys.readouterr().err


def test_ddp_two_cpu_processes_end_with_identical_weights(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(TESTS.parent))
    proc = subprocess.run([PYTHON, str(TESTS / 'ddp_worker.py'),
                           str(tmp_path)], env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rank0 = torch.load(tmp_path / 'rank0.pt', weights_only=True)
    rank1 = torch.load(tmp_path / 'rank1.pt', weights_only=True)
    initial = torch.load(tmp_path / 'initial.pt', weights_only=True)
    assert rank0['backend'] == 'gloo' and rank0['world_size'] == 2
    # 32 structures, batch 4, 2 ranks, 2 epochs: 4 steps per epoch each.
    assert rank0['steps'] == rank1['steps'] == 8
    changed = False
    for key, value in rank0['state'].items():
        assert torch.equal(value, rank1['state'][key]), key
        changed |= not torch.equal(value, initial[key])
    assert changed, 'training must have moved the weights'


def test_cli_ddp_run_is_one_run(emt_file, tmp_path):
    # Lightning starts the second process by running the same command
    # again: it must join the run, not find the folder taken.
    run = tmp_path / 'run'
    proc = subprocess.run(
        [PYTHON, '-m', 'pyg_schnet', *train_args(emt_file, run, '--epochs',
                                                 '2', '--devices', '2',
                                                 '--strategy', 'ddp')],
        capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert sorted(epoch_metrics(run / 'metrics.csv')['val_loss']) == [1, 2]
    assert (run / 'model.pt').exists()


def test_every_subcommand_is_documented():
    parser = build_parser()
    sub = next(a for a in parser._actions
               if isinstance(a, type(parser._subparsers._group_actions[0])))
    assert set(sub.choices) == {'train', 'evaluate', 'predict', 'label',
                                  'md', 'explain', 'deploy', 'ipi-client'}
    for name, subparser in sub.choices.items():
        assert subparser.description, name
        text = subparser.format_help()
        for action in subparser._actions:
            if action.option_strings and action.dest != 'help':
                assert action.help, (name, action.dest)
        assert 'usage' in text


def test_label_cli_writes_a_dataset(tmp_path, capsys):
    out = tmp_path / 'alloys.extxyz'
    assert main(['label', '--calculator', 'emt', '--alloys', '3', '--out',
                 str(out), '--properties', 'energy', 'forces',
                 'stress']) == 0
    import ase.io
    images = ase.io.read(out, ':')
    assert len(images) == 3 and images[0].get_stress().shape == (6, )


def test_ema_warm_up_forgets_the_first_steps():
    from torch.optim.swa_utils import AveragedModel

    from pyg_schnet.train.ema import WarmupEMA, warmup_ema_fn
    decay = 0.99
    weight = torch.nn.Parameter(torch.zeros(1, dtype=torch.float64))
    module = torch.nn.Linear(1, 1, bias=False).double()
    module.weight = torch.nn.Parameter(weight.view(1, 1))
    average = AveragedModel(module, multi_avg_fn=warmup_ema_fn(decay))
    expected = None
    for n in range(300):
        with torch.no_grad():
            module.weight.fill_(1.0 if n == 0 else 0.0)  # first step: 1
        average.update_parameters(module)
        if n == 0:
            expected = 1.0
        else:
            d = min(decay, (1 + n) / (10 + n))
            expected = d * expected
        assert average.module.weight.item() == pytest.approx(expected)
    # The first step's weights are forgotten: without the warm-up they would
    # keep the weight d^300 = 0.049.
    assert expected < 1e-3 and decay**300 > 0.04
    # The checkpoint key of Lightning's EMA: old runs resume with it.
    assert WarmupEMA(decay).state_key == 'EMAWeightAveraging'
    # One multi-tensor update for all weights (Lightning's per-weight
    # avg_fn is gone).
    assert 'avg_fn' not in WarmupEMA(decay)._kwargs
    with pytest.raises(ValueError, match='decay'):
        warmup_ema_fn(1.5)


def test_ema_average_lives_on_the_training_device():
    # Lightning's EMA callback makes its average in setup(), while the
    # model is still on the CPU: on a GPU every step copied all weights
    # off the device. The average is made on the strategy's device.
    from types import SimpleNamespace

    import lightning.pytorch as pl

    from pyg_schnet.train.ema import WarmupEMA

    class Task(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.layer = torch.nn.Linear(3, 1)

    trainer = SimpleNamespace(strategy=SimpleNamespace(
        root_device=torch.device('meta')))
    ema = WarmupEMA(0.99)
    ema.setup(trainer, Task(), 'fit')
    assert {p.device.type for p in ema._average_model.parameters()} == \
        {'meta'}
    # An explicit device is kept.
    ema = WarmupEMA(0.99, device='cpu')
    ema.setup(trainer, Task(), 'fit')
    assert {p.device.type for p in ema._average_model.parameters()} == \
        {'cpu'}
