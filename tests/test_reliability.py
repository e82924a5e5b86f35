"""Regression tests of issue 10: no code execution from files, no lost or
overwritten runs, no silent wrong results, a clear error for every bad
input. Each test failed on the code before the fix."""
import json
import os
import pickle
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import ase.io
import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import bulk, molecule
from ase.calculators.emt import EMT
from torch_geometric.data import Batch, Data

from pyg_schnet.cli import main
from pyg_schnet.data import QM9, AtomsDataset, from_ase, from_smiles
from pyg_schnet.graph import PeriodicRadiusGraph
from pyg_schnet.io import (
    CorruptFileError,
    RunLock,
    RunLockedError,
    UnsafeFileError,
    atomic_torch_save,
    safe_load,
)
from pyg_schnet.models import SchNet, load_model, save_model
from pyg_schnet.train import TrainConfig
from pyg_schnet.train.checkpoint import RunCheckpoint, resume_point
from pyg_schnet.train.datasets import target_statistics
from pyg_schnet.train.history import epoch_metrics

from conftest import cli_error, g2_data, small_models, train_args

# -- code execution ---------------------------------------------------------

class Payload:
    r"""A pickle that creates a file when unpickled: the proof that a load
    ran code."""
    marker = None

    def __reduce__(self):
        return (Path.touch, (Path(self.marker), ))


def craft(path: Path, marker: Path) -> None:
    Payload.marker = str(marker)
    torch.save({'state_dict': {}, 'epoch': 0, 'x': Payload()}, path)


def test_crafted_files_are_refused_without_running_code(tmp_path):
    marker = tmp_path / 'pwned'
    evil = tmp_path / 'evil.pt'
    craft(evil, marker)
    with pytest.raises(UnsafeFileError, match='could run code'):
        safe_load(evil)
    with pytest.raises(ValueError, match='evil.pt'):
        load_model(evil)
    assert not marker.exists()


def test_crafted_checkpoint_is_refused_on_resume(emt_file, tmp_path,
                                                 capsys):
    run = tmp_path / 'run'
    assert main(train_args(emt_file, run, '--epochs', '2')) == 0
    marker = tmp_path / 'pwned'
    for name in ('last.ckpt', 'previous.ckpt', 'best.ckpt'):
        craft(run / 'checkpoints' / name, marker)
    capsys.readouterr()
    assert main(['train', '--resume', '--run-dir', str(run), '--epochs',
                 '3']) == 2
    err = capsys.readouterr().err
    assert err.startswith('error:') and 'could run code' in err
    assert not marker.exists()
    craft(run / 'model.pt', marker)
    assert main(['evaluate', str(run)]) == 2
    assert 'could run code' in capsys.readouterr().err
    assert not marker.exists()


def test_crafted_dataset_caches_are_refused(emt_file, tmp_path):
    marker = tmp_path / 'pwned'
    root = tmp_path / 'cache'
    dataset = AtomsDataset(emt_file, root=str(root))
    processed = Path(dataset.processed_paths[0])
    # PyG's Dataset._process unpickles these with weights_only=False.
    for name in ('pre_transform.pt', 'pre_filter.pt'):
        craft(processed.parent / name, marker)
    AtomsDataset(emt_file, root=str(root))
    assert not marker.exists()
    craft(processed, marker)
    with pytest.raises(UnsafeFileError):
        AtomsDataset(emt_file, root=str(root))
    qm9 = QM9(str(tmp_path / 'qm9'), max_molecules=5)
    craft(Path(qm9.processed_paths[0]), marker)
    with pytest.raises(UnsafeFileError):
        QM9(str(tmp_path / 'qm9'), max_molecules=5)
    assert not marker.exists()


def test_every_load_in_the_package_goes_through_safe_load():
    import ast
    package = Path(__file__).parent.parent / 'pyg_schnet'
    unsafe = {'load', 'loads', 'torch_load', 'Unpickler'}
    for path in package.rglob('*.py'):
        if path.relative_to(package) == Path('io/load.py'):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and \
                    isinstance(node.func, ast.Attribute) and \
                    node.func.attr in unsafe and \
                    isinstance(node.func.value, ast.Name) and \
                    node.func.value.id in ('torch', 'pickle', 'fs'):
                raise AssertionError(f'{path}:{node.lineno} calls '
                                     f'{node.func.value.id}.'
                                     f'{node.func.attr} directly')


# -- lost or overwritten runs -------------------------------------------------

def _snapshot(folder: Path) -> dict:
    return {p.relative_to(folder): (p.stat().st_mtime_ns, p.read_bytes())
            for p in folder.rglob('*') if p.is_file()}


def test_copied_run_resumes_in_the_copy_from_another_directory(
        emt_file, tmp_path, monkeypatch, capsys):
    work = tmp_path / 'work'
    work.mkdir()
    shutil.copy(emt_file, work / 'alloys.extxyz')
    monkeypatch.chdir(work)
    args = train_args(Path('alloys.extxyz'), Path('runs') / 'a', '--epochs',
                      '2')
    assert main(args) == 0
    original = work / 'runs' / 'a'
    before = _snapshot(original)
    copy = tmp_path / 'elsewhere' / 'copy'
    shutil.copytree(original, copy)
    monkeypatch.chdir(tmp_path)  # another working directory
    assert main(['train', '--resume', '--run-dir', str(copy), '--epochs',
                 '4', '--no-progress']) == 0
    assert _snapshot(original) == before, 'the original run was touched'
    assert sorted(epoch_metrics(copy / 'metrics.csv')['val_loss']) == \
        [1, 2, 3, 4]
    assert main(['evaluate', str(copy)]) == 0
    assert main(['evaluate', str(original)]) == 0
    capsys.readouterr()
    # The data moved: --dataset names its new place, checked by content.
    moved = tmp_path / 'moved.extxyz'
    shutil.move(work / 'alloys.extxyz', moved)
    assert main(['train', '--resume', '--run-dir', str(copy), '--epochs',
                 '5', '--no-progress']) == 2
    assert 'does not exist (moved?)' in capsys.readouterr().err
    other = tmp_path / 'other.extxyz'
    images = ase.io.read(moved, ':')
    images[0].positions[0, 0] += 0.1
    ase.io.write(other, images)
    assert main(['train', '--resume', '--run-dir', str(copy), '--dataset',
                 str(other), '--epochs', '5', '--no-progress']) == 2
    assert 'not the one this run was trained on' in capsys.readouterr().err
    assert main(['train', '--resume', '--run-dir', str(copy), '--dataset',
                 str(moved), '--epochs', '5', '--no-progress']) == 0


def test_resume_refuses_flags_that_would_change_the_run(emt_file, tmp_path,
                                                        capsys):
    run = tmp_path / 'run'
    assert main(train_args(emt_file, run, '--epochs', '1')) == 0
    capsys.readouterr()
    for flag, value in (('--lr', '0.1'), ('--model', 'dtnn'),
                        ('--n-train', '10'), ('--cutoff', '3.0')):
        assert main(['train', '--resume', '--run-dir', str(run), flag,
                     value]) == 2
        err = capsys.readouterr().err
        assert f'{flag} cannot change when resuming' in err, err
    # The same value as the run's is not a change.
    assert main(['train', '--resume', '--run-dir', str(run), '--lr', '3e-3',
                 '--epochs', '2', '--no-progress']) == 0
    capsys.readouterr()
    # --epochs is the total: fewer than trained is a clear error (it was
    # Lightning's MisconfigurationException, reported as a bug).
    for epochs in ('1', '2'):
        assert main(['train', '--resume', '--run-dir', str(run), '--epochs',
                     epochs, '--no-progress']) == 2
        err = capsys.readouterr().err
        assert 'has already trained 2 epochs' in err and \
            'give more than 2' in err and 'unexpected' not in err, err


class _WorseningTask:
    r"""A Lightning module whose validation loss grows every epoch, so only
    epoch 0 is ever the best."""
    @staticmethod
    def make():
        import lightning.pytorch as pl

        class Task(pl.LightningModule):
            def __init__(self):
                super().__init__()
                self.w = torch.nn.Parameter(torch.ones(1))

            def training_step(self, batch, batch_idx):
                return (self.w * batch[0]).sum()

            def validation_step(self, batch, batch_idx):
                self.log('val_loss', float(self.current_epoch))

            def configure_optimizers(self):
                return torch.optim.SGD(self.parameters(), lr=0.0)
        return Task()


def test_last_checkpoint_is_written_every_epoch(tmp_path):
    import lightning.pytorch as pl

    from pyg_schnet.train.checkpoint import AtomicCheckpointIO
    folder = tmp_path / 'checkpoints'
    callback = RunCheckpoint(folder, patience=100)
    trainer = pl.Trainer(max_epochs=4, callbacks=[callback], logger=False,
                         plugins=[AtomicCheckpointIO()],
                         enable_progress_bar=False,
                         enable_model_summary=False,
                         num_sanity_val_steps=0)
    data = torch.utils.data.DataLoader(torch.ones(2, 1), batch_size=1)
    trainer.fit(_WorseningTask.make(), data, data)
    assert torch.load(folder / 'last.ckpt', weights_only=True)['epoch'] == 3
    assert torch.load(folder / 'previous.ckpt',
                      weights_only=True)['epoch'] == 2
    assert torch.load(folder / 'best.ckpt', weights_only=True)['epoch'] == 0
    assert callback.best_epoch == 0 and callback.epochs_done == 4


def test_interrupted_checkpoint_write_keeps_the_old_one(tmp_path,
                                                        monkeypatch):
    path = tmp_path / 'last.ckpt'
    atomic_torch_save({'epoch': 1}, path)

    def dying_save(obj, f):
        Path(f).write_bytes(b'PK\x03\x04 half a file')
        raise OSError(28, 'No space left on device')
    monkeypatch.setattr(torch, 'save', dying_save)
    with pytest.raises(OSError, match='No space'):
        atomic_torch_save({'epoch': 2}, path)
    monkeypatch.undo()
    assert torch.load(path, weights_only=True) == {'epoch': 1}
    assert [p.name for p in tmp_path.iterdir()] == ['last.ckpt']


@pytest.mark.parametrize('damage', [b'', b'\x00' * 100, os.urandom(4096)])
def test_damaged_last_checkpoint_falls_back_to_the_previous(
        emt_file, tmp_path, damage):
    run = tmp_path / 'run'
    assert main(train_args(emt_file, run, '--epochs', '3')) == 0
    last = run / 'checkpoints' / 'last.ckpt'
    previous = run / 'checkpoints' / 'previous.ckpt'
    last.write_bytes(damage)
    with pytest.warns(UserWarning, match='resuming from the previous'):
        path, state = resume_point(last, previous)
    assert path == previous and state['epoch'] == 1
    assert main(['train', '--resume', '--run-dir', str(run), '--epochs',
                 '4', '--no-progress']) == 0
    assert torch.load(last, weights_only=True)['epoch'] == 3
    previous.write_bytes(damage)
    last.write_bytes(damage[:10] + b'x')
    with pytest.raises(CorruptFileError, match='no usable checkpoint'):
        resume_point(last, previous)


def test_second_training_in_the_same_folder_is_refused(tmp_path):
    lock = RunLock(tmp_path / 'run').acquire()
    with pytest.raises(RunLockedError, match=f'pid {os.getpid()}'):
        RunLock(tmp_path / 'run').acquire()
    lock.release()
    RunLock(tmp_path / 'run').acquire().release()


def test_stale_lock_of_a_killed_process_is_taken_over(tmp_path):
    folder = tmp_path / 'run'
    code = ('import sys, time; from pyg_schnet.io import RunLock; '
            'RunLock(sys.argv[1]).acquire(); print("locked", flush=True); '
            'time.sleep(60)')
    proc = subprocess.Popen([sys.executable, '-c', code, str(folder)],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == 'locked'
    with pytest.raises(RunLockedError, match=f'pid {proc.pid}'):
        RunLock(folder).acquire()
    proc.kill()
    proc.wait()
    with pytest.warns(UserWarning, match=f'pid {proc.pid}.*no longer'):
        RunLock(folder).acquire().release()


def test_cli_reports_a_locked_run(emt_file, tmp_path, capsys):
    run = tmp_path / 'run'
    with RunLock(run):
        assert main(train_args(emt_file, run, '--epochs', '1')) == 2
    assert 'in use by another training' in capsys.readouterr().err


# -- silent wrong results ----------------------------------------------------

def _crystal():
    atoms = bulk('Cu', 'fcc', a=3.6) * (2, 1, 1)
    atoms.rattle(0.05, seed=1)
    return atoms


@pytest.mark.parametrize('order', [(0, 1), (1, 0)])
def test_molecules_and_crystals_batch_in_any_order(order):
    model = small_models()['schnet']
    items = [from_ase(molecule('H2O'), torch.float64),
             from_ase(_crystal(), torch.float64)]
    singles = [model(d) for d in items]
    batch = Batch.from_data_list([items[k] for k in order])
    torch.testing.assert_close(
        model(batch), torch.cat([singles[k] for k in order]))


def test_molecule_without_cell_before_a_crystal_is_an_error():
    model = small_models()['schnet']
    crystal = PeriodicRadiusGraph(model.cutoff)(
        from_ase(_crystal(), torch.float64))
    plain = g2_data('H2O')
    plain = PeriodicRadiusGraph(model.cutoff)(plain)
    batch = Batch.from_data_list([plain, crystal])
    assert 'cell' not in batch  # PyG dropped it
    with pytest.raises(ValueError, match="no 'cell'.*batched before"):
        model(batch)


def test_tiny_training_set_gets_a_meaningful_scale(tmp_path):
    images = []
    for symbol in ('Cu', 'Au'):
        atoms = bulk(symbol, 'fcc', a=3.7)
        atoms.calc = EMT()
        atoms.get_potential_energy()
        images.append(atoms)
    path = tmp_path / 'two.extxyz'
    ase.io.write(path, images)
    dataset = AtomsDataset(path)
    from pyg_schnet.train.datasets import fit_atomref
    atomref = fit_atomref(dataset)  # fits both structures exactly
    with pytest.warns(UserWarning, match='too small to scale'):
        _, std = target_statistics(dataset, 'energy', 'sum', atomref)
    assert std > 1e-3


def test_non_finite_labels_are_refused(tmp_path):
    atoms = molecule('H2O')
    atoms.calc = EMT()
    atoms.get_potential_energy()
    atoms.calc.results['energy'] = float('nan')
    with pytest.raises(ValueError, match="'energy' label is not finite"):
        from_ase(atoms)


def test_frames_must_carry_the_same_labels(tmp_path):
    labelled = []
    for k in range(3):
        atoms = molecule('H2O')
        atoms.rattle(0.02, seed=k)
        atoms.calc = EMT()
        atoms.get_forces()
        labelled.append(atoms)
    bare = molecule('H2O')
    for order, frame in (([bare] + labelled, 0), (labelled + [bare], 3)):
        path = tmp_path / f'mixed{frame}.extxyz'
        ase.io.write(path, order)
        with pytest.raises(ValueError, match=f"'energy' is missing in 1 of "
                           f"4 structures .*frame {frame}"):
            AtomsDataset(path)


def test_stale_calculator_results_are_not_labels():
    atoms = molecule('H2O')
    atoms.calc = EMT()
    atoms.get_potential_energy()
    atoms.positions[0] += 0.3  # moved after the calculation
    with pytest.warns(UserWarning, match='stale'):
        data = from_ase(atoms)
    assert 'energy' not in data and 'forces' not in data


def test_unseen_elements_are_warned_about(emt_file, tmp_path, capsys):
    run = tmp_path / 'run'
    assert main(train_args(emt_file, run, '--epochs', '1')) == 0
    model, _ = load_model(run / 'model.pt')
    assert model.trained_elements and 1 not in model.trained_elements
    hydrogen = from_ase(Atoms('Cu2H', positions=[[0, 0, 0], [2.5, 0, 0],
                                                 [1.2, 1.5, 0]]))
    with pytest.warns(UserWarning, match='elements H were not in the '
                      'training data'):
        model(hydrogen)
    structures = tmp_path / 's.extxyz'
    ase.io.write(structures, [Atoms('Cu2', positions=[[0, 0, 0],
                                                      [2.5, 0, 0]]),
                              Atoms('Cu2H', positions=[[0, 0, 0], [2.5, 0, 0],
                                                       [1.2, 1.5, 0]])])
    capsys.readouterr()
    assert main(['predict', str(run), str(structures)]) == 0
    err = capsys.readouterr().err
    assert 'warning: structure 1: elements H were not' in err
    assert 'structure 0' not in err


@pytest.mark.parametrize('values, match', [
    (dict(max_time=0), 'max_time must be positive'),
    (dict(forces='no'), 'forces must be true or false'),
    (dict(model='dtnn', model_kwargs={'shared_interactions': 'maybe'}),
     'shared_interactions'),
    (dict(cutoff=float('inf')), 'cutoff must be finite'),
    (dict(epochs='ten'), 'epochs must be an integer'),
    (dict(seed=None), 'seed must be an integer'),
    (dict(model_kwargs=[1, 2]), 'model_kwargs must be a mapping'),
    (dict(model_kwargs={'foo': 1}), "no argument 'foo'"),
    (dict(n_val=0), 'n_val must be a count'),
    (dict(devices=0), 'devices must be at least 1'),
])
def test_configuration_values_are_checked(values, match):
    with pytest.raises(ValueError, match=match):
        TrainConfig(**values)


def test_yaml_numbers_written_as_strings_are_numbers(tmp_path):
    path = tmp_path / 'c.yaml'
    path.write_text('lr: 1e-3\nmin_lr: 5e-7\nn_train: 0.8\nn_test: rest\n')
    config = TrainConfig.load(path)
    assert config.lr == 1e-3 and config.min_lr == 5e-7
    assert config.n_train == 0.8 and config.n_test == 'rest'


def test_forces_of_the_wrong_shape_are_refused():
    atoms = molecule('H2O')
    atoms.arrays['forces'] = np.zeros((3, 2))
    with pytest.raises(ValueError, match=r'forces label must have shape '
                       r'\[3, 3\]'):
        from_ase(atoms)


# -- clear errors instead of tracebacks ---------------------------------------

@pytest.fixture(scope='module')
def finished_run(emt_file, tmp_path_factory):
    run = tmp_path_factory.mktemp('done') / 'run'
    assert main(train_args(emt_file, run, '--epochs', '1')) == 0
    return run




@pytest.mark.parametrize('extra, match', [
    (['--model-arg', 'foo=1'], "no argument 'foo'"),
    (['--target', 'stress'], 'not one number per structure'),
    (['--n-val', '0'], 'n_val must be a count'),
    (['--epochs', '0'], 'epochs must be at least 1'),
    (['--features', '0'], 'features must be at least 1'),
    (['--devices', '0'], 'devices must be at least 1'),
    (['--max-time', '0'], 'max_time must be positive'),
    (['--n-train', '1000'], 'lower --n-train'),
])
def test_cli_train_errors(emt_file, tmp_path, capsys, extra, match):
    cli_error(capsys, train_args(emt_file, tmp_path / 'run', *extra), match)


@pytest.mark.skipif(torch.cuda.is_available(), reason='a GPU is present')
def test_cli_cuda_without_a_gpu(emt_file, tmp_path, capsys):
    cli_error(capsys, train_args(emt_file, tmp_path / 'run', '--device',
                                  'cuda'), 'no CUDA GPU')


def test_cli_file_errors(emt_file, finished_run, tmp_path, capsys):
    cli_error(capsys, ['evaluate', str(emt_file)], 'not a readable')
    cli_error(capsys, ['evaluate', str(tmp_path / 'nothing')], 'no run')
    cli_error(capsys, ['predict', str(finished_run), str(emt_file),
                        '--out', str(tmp_path / 'x.unknownext')],
              "cannot write")
    cli_error(capsys, ['label', '--calculator', 'emt', '--alloys', '0',
                        '--out', str(tmp_path / 'a.extxyz')],
              '--alloys must be at least 1')
    bad = tmp_path / 'bad.yaml'
    for text, match in (('lr: [1\n', 'not valid YAML (line'),
                        ('epochs: ten\n', 'epochs must be an integer'),
                        ('seed: null\n', 'seed must be an integer'),
                        ('model_kwargs: [1, 2]\n', 'model_kwargs must be'),
                        ('- 1\n- 2\n', 'does not hold a mapping')):
        bad.write_text(text)
        cli_error(capsys, ['train', '--config', str(bad), '--run-dir',
                            str(tmp_path / 'r')], match)


@pytest.mark.parametrize('name, content, match', [
    ('model.pt', b'', 'is empty'),
    ('model.pt', b'\x80\x02garbage' * 10, 'not a readable'),
    ('model.pt', os.urandom(2048), 'not a readable'),
    ('config.yaml', b'epochs: [\n', 'not valid YAML'),
    ('metrics.csv', b'epoch,val_loss\n0,abc\n', 'not a metrics file'),
])
def test_cli_damaged_run_files(finished_run, tmp_path, capsys, name, content,
                               match):
    run = tmp_path / 'run'
    shutil.copytree(finished_run, run)
    (run / name).write_bytes(content)
    argv = ['evaluate', str(run)] if name != 'metrics.csv' else \
        ['train', '--resume', '--run-dir', str(run), '--epochs', '2',
         '--no-progress']
    cli_error(capsys, argv, match)


def test_cli_model_with_mismatched_config(emt_file, finished_run, tmp_path,
                                          capsys):
    blob = torch.load(finished_run / 'model.pt', weights_only=True)
    blob['config']['hidden_channels'] = 32
    torch.save(blob, tmp_path / 'model.pt')
    cli_error(capsys, ['predict', str(tmp_path / 'model.pt'),
                        str(emt_file)],
              'weights do not fit the saved configuration')


@pytest.mark.skipif(os.geteuid() == 0, reason='root ignores permissions')
def test_cli_read_only_run_folder(emt_file, tmp_path, capsys):
    folder = tmp_path / 'ro'
    folder.mkdir()
    folder.chmod(0o500)
    try:
        cli_error(capsys, train_args(emt_file, folder / 'run'),
                  'permission denied')
    finally:
        folder.chmod(0o700)


def test_cli_read_only_run_folder_as_root(emt_file, tmp_path, capsys,
                                          monkeypatch):
    # Root ignores file permissions, so the refusal is simulated where the
    # run folder is created.
    def refuse(*args, **kwargs):
        raise PermissionError(13, 'Permission denied', str(tmp_path / 'ro'))
    monkeypatch.setattr(Path, 'mkdir', refuse)
    cli_error(capsys, train_args(emt_file, tmp_path / 'ro' / 'run'),
              'permission denied')


# -- clear errors in Python --------------------------------------------------

def test_python_input_errors():
    model = small_models()['schnet']
    data = g2_data('H2O')
    with pytest.raises(ValueError, match="no 'pos'"):
        model(Data(z=data.z))
    with pytest.raises(ValueError, match="no 'z'"):
        model(Data(pos=data.pos))
    with pytest.raises(ValueError, match=r'torch.long.*uint8'):
        model(Data(z=data.z.to(torch.uint8), pos=data.pos))
    float_edges = Data(z=data.z, pos=data.pos,
                       edge_index=torch.tensor([[0.0, 1.0], [1.0, 0.0]]))
    with pytest.raises(ValueError, match='integer atom indices'):
        model(float_edges)
    with torch.inference_mode():
        with pytest.raises(ValueError, match='torch.no_grad'):
            model(data, forces=True)
        inference_data = g2_data('H2O')
    _, forces = model(inference_data, forces=True)  # made under inference
    assert torch.isfinite(forces).all()
    with pytest.raises(ValueError, match="'seed' must be an integer"):
        from_smiles('CCO', seed=-5)
    atoms = molecule('H2O')
    atoms.info['stress'] = np.zeros(4)
    with pytest.raises(ValueError, match='stress label must have 6'):
        from_ase(atoms)


def test_stress_of_a_molecule_in_a_box_is_the_documented_error():
    model = small_models()['schnet']
    atoms = molecule('H2O')
    atoms.center(vacuum=5.0)  # a box, but no periodic direction
    data = from_ase(atoms, torch.float64)
    assert bool((data.cell != 0).any()) and not bool(data.pbc.any())
    with pytest.raises(ValueError, match='stress needs a periodic cell'):
        model(data, stress=True)


def test_atoms_dataset_without_root_leaves_no_folder(emt_file, tmp_path,
                                                     monkeypatch):
    monkeypatch.chdir(tmp_path)
    AtomsDataset(emt_file)
    assert list(tmp_path.iterdir()) == []


def test_saved_model_config_comes_from_the_constructor(tmp_path):
    model = SchNet(hidden_channels=8, num_filters=8, num_interactions=1,
                   gaussian_width=0.3, filter_activations=2)
    save_model(model, tmp_path / 'm.pt')
    blob = torch.load(tmp_path / 'm.pt', weights_only=True)
    assert blob['config']['gaussian_width'] == 0.3
    assert blob['config']['filter_activations'] == 2


def test_results_are_json_and_plots_are_written(finished_run):
    results = json.loads((finished_run / 'results.json').read_text())
    assert results['stopped_by'] == 'epochs'
    assert results['epochs_run'] == 1 and results['epochs'] == 1


def test_warnings_do_not_leak_from_normal_training(emt_file, tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter('error', UserWarning)
        assert main(train_args(emt_file, tmp_path / 'run', '--epochs',
                               '1')) == 0


def test_pickle_module_is_not_used_to_read(tmp_path):
    # safe_load refuses a plain pickle file too (not a torch zip archive).
    path = tmp_path / 'plain.pkl'
    with open(path, 'wb') as f:
        pickle.dump({'a': 1}, f)
    with pytest.raises(CorruptFileError):
        safe_load(path)


# -- found beyond the issue list ----------------------------------------------

def test_outputs_never_replace_files_silently(emt_file, finished_run,
                                              tmp_path, capsys):
    mine = tmp_path / 'mine.extxyz'
    mine.write_text('precious')
    cli_error(capsys, ['label', '--calculator', 'emt', '--alloys', '1',
                        '--out', str(mine)], 'pass --overwrite')
    cli_error(capsys, ['predict', str(finished_run), str(emt_file),
                        '--out', str(mine)], 'pass --overwrite')
    assert mine.read_text() == 'precious'
    cli_error(capsys, ['predict', str(finished_run), str(emt_file),
                        '--out', str(emt_file), '--overwrite'],
              'is the input file')
    assert main(['label', '--calculator', 'emt', '--alloys', '1', '--out',
                 str(mine), '--overwrite']) == 0
    assert len(ase.io.read(mine, ':')) == 1


def test_diverging_training_says_so(emt_file, tmp_path, capsys):
    run = tmp_path / 'run'
    code = main(train_args(emt_file, run, '--epochs', '5', '--lr', '1e6',
                           '--grad-clip', 'none', '--ema-decay', 'off'))
    out = capsys.readouterr()
    assert 'diverged' in out.out + out.err
    if code == 0:  # an early epoch improved before the loss blew up
        results = json.loads((run / 'results.json').read_text())
        assert results['stopped_by'] == 'divergence'
        assert np.isfinite(results['test_mae'])


def test_resume_of_a_run_killed_before_its_first_checkpoint(
        emt_file, tmp_path, capsys):
    run = tmp_path / 'run'
    assert main(train_args(emt_file, run, '--epochs', '2')) == 0
    shutil.rmtree(run / 'checkpoints')
    (run / 'model.pt').unlink()
    capsys.readouterr()
    assert main(['train', '--resume', '--run-dir', str(run),
                 '--no-progress']) == 0
    assert 'no checkpoint yet' in capsys.readouterr().out
    assert sorted(epoch_metrics(run / 'metrics.csv')['val_loss']) == [1, 2]


def test_failed_pretrained_comparison_does_not_fail_a_finished_run(
        emt_file, tmp_path, monkeypatch, capsys):
    # The comparison with the shipped model comes after the run is saved:
    # if it breaks (a damaged package file, say), the run still succeeds.
    import pyg_schnet.train.run as run_module

    def broken(*args, **kwargs):
        raise OSError('pretrained file damaged')

    monkeypatch.setattr(run_module, '_pretrained_on', broken)
    run = tmp_path / 'run'
    assert main(train_args(emt_file, run, '--epochs', '1')) == 0
    err = capsys.readouterr().err
    assert 'warning: the comparison with the pretrained model failed ' \
        '(OSError: pretrained file damaged)' in err, err
    results = json.loads((run / 'results.json').read_text())
    assert results['epochs_run'] == 1 and 'pretrained' not in results
    assert (run / 'model.pt').exists()
