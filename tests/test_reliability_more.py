"""Regression tests of the second adversarial round (issue 17): data that
fails before the first epoch, runs that can always be finished, the
package's pretrained models whatever lies in the working directory,
percentages that mean percent, and errors that name their cause."""
import json
import shutil

import ase.io
import numpy as np
import pytest
import torch
from ase.build import bulk, molecule

from pyg_schnet.cli import main
from pyg_schnet.data import from_smiles, to_ase

from conftest import cli_error, train_args


def _with_bad_frame(emt_file, tmp_path, frame: int, change):
    images = ase.io.read(emt_file, ':')
    change(images[frame])
    path = tmp_path / 'data.extxyz'
    ase.io.write(path, images)
    return path


# -- data validated before the first epoch (case 1) --------------------------

@pytest.mark.parametrize('change, match', [
    (lambda a: a.positions.__setitem__(1, a.positions[0] + 0.01),
     'frame 37: overlapping atoms'),
    (lambda a: a.set_cell([[3.6, 0, 0], [7.2, 0, 0], [0, 0, 3.6]]),
     'frame 37: singular cell'),
])
def test_a_bad_frame_fails_the_run_before_any_epoch(emt_file, tmp_path,
                                                    capsys, change, match):
    data = _with_bad_frame(emt_file, tmp_path, 37, change)
    run = tmp_path / 'run'
    err = cli_error(capsys, train_args(data, run, '--epochs', '3'), match)
    assert str(data) in err
    assert not (run / 'checkpoints').exists()


def test_a_split_file_with_an_empty_test_set_is_refused(emt_file, tmp_path,
                                                        capsys):
    split = tmp_path / 'split.pt'
    torch.save({'train': torch.arange(24), 'val': torch.arange(24, 32),
                'test': torch.zeros(0, dtype=torch.long)}, split)
    run = tmp_path / 'run'
    cli_error(capsys, train_args(emt_file, run, '--split-file',
                                  str(split)), 'the test set of')
    assert not (run / 'checkpoints').exists()


def test_a_run_whose_test_evaluation_failed_can_be_finished(
        emt_file, tmp_path, monkeypatch, capsys):
    import pyg_schnet.train.run as run_module
    real = run_module.evaluate_model

    def failing(*args, **kwargs):
        raise RuntimeError('out of memory in the test evaluation')

    monkeypatch.setattr(run_module, 'evaluate_model', failing)
    run = tmp_path / 'run'
    assert main(train_args(emt_file, run, '--epochs', '2')) == 2
    assert not (run / 'model.pt').exists()
    assert 'out of memory' in capsys.readouterr().err
    monkeypatch.setattr(run_module, 'evaluate_model', real)
    assert main(['train', '--resume', '--run-dir', str(run),
                 '--no-progress']) == 0
    out = capsys.readouterr().out
    assert 'had not finished: evaluating and exporting it' in out
    results = json.loads((run / 'results.json').read_text())
    assert results['epochs_run'] == 2 and (run / 'model.pt').exists()
    assert main(['evaluate', str(run)]) == 0
    # A finished run is not finished twice.
    cli_error(capsys, ['train', '--resume', '--run-dir', str(run)],
              'has already trained 2 epochs')


# -- the package's pretrained model, always (case 6) -------------------------

def test_pretrained_means_the_packages_model(tmp_path, monkeypatch, capsys,
                                             emt_file):
    path = tmp_path / 'mol.extxyz'
    ase.io.write(path, to_ase(from_smiles('CCO', seed=0)))
    assert main(['predict', '--pretrained', 'schnet-qm9-U0',
                 str(path)]) == 0
    reference = capsys.readouterr().out
    # A run folder named like the pretrained model in the working directory.
    monkeypatch.chdir(tmp_path)
    assert main(train_args(emt_file, tmp_path / 'schnet-qm9-U0',
                           '--epochs', '1')) == 0
    capsys.readouterr()
    assert main(['predict', '--pretrained', 'schnet-qm9-U0',
                 str(path)]) == 0
    assert capsys.readouterr().out == reference
    # As a positional name it is ambiguous: say so instead of guessing.
    cli_error(capsys, ['predict', 'schnet-qm9-U0', str(path)],
              'is both a folder here and a pretrained model')
    # The local run is reached with a path (it is an EMT model: H, C, O
    # unseen, a different energy).
    assert main(['predict', './schnet-qm9-U0', str(path)]) == 0
    captured = capsys.readouterr()
    assert 'elements H, C, O were not in the training data' in captured.err
    assert captured.out != reference


# -- percentages mean percent (case 7) ---------------------------------------

@pytest.mark.parametrize('share, match', [
    ('100%', 'below 100'), ('200%', 'below 100'), ('0%', 'positive')])
def test_percent_out_of_range_is_refused(emt_file, tmp_path, capsys, share,
                                         match):
    cli_error(capsys, train_args(emt_file, tmp_path / 'run', '--n-train',
                                  share), match)


def test_percent_means_percent():
    from pyg_schnet.train.config import TrainConfig
    from pyg_schnet.train.datasets import resolve_split_sizes
    config = TrainConfig(n_train='50%', n_val='10%', n_test='rest')
    assert resolve_split_sizes(40, (config.n_train, config.n_val,
                                    config.n_test), (None, None, None)) == \
        (20, 4, 16)


# -- errors that name their cause (case 11) ----------------------------------

def test_a_tampered_card_is_named(tmp_path, monkeypatch, capsys):
    import pyg_schnet.models.pretrained as pretrained
    copy = tmp_path / 'pretrained'
    shutil.copytree(pretrained.PRETRAINED_DIR, copy)
    monkeypatch.setattr(pretrained, 'PRETRAINED_DIR', copy)
    card = copy / 'schnet-qm9-U0.json'
    card.write_text('{"target": "U0", ')
    cli_error(capsys, ['predict', '--list'], 'is not valid JSON')
    blob = json.loads((pretrained.Path(__file__).parent.parent / 'pyg_schnet'
                       / 'pretrained' / 'schnet-qm9-U0.json').read_text())
    del blob['test_mae_eV']
    card.write_text(json.dumps(blob))
    err = cli_error(capsys, ['predict', '--card', 'schnet-qm9-U0'],
                    "the card's 'test_mae_eV' is missing")
    assert str(card) in err


def test_offset_nan_is_refused_by_the_parser(capsys):
    with pytest.raises(SystemExit):
        main(['explain', 'potential', 'schnet-qm9-U0', '--smiles', 'CCO',
              '--offset', 'nan', '--out', 'x.png'])
    assert 'expected a finite number' in capsys.readouterr().err
    from pyg_schnet.interpret import vdw_surface
    with pytest.raises(ValueError, match="'offset' must be a finite"):
        vdw_surface(from_smiles('CCO'), offset=float('nan'))


def test_max_z_below_the_data_is_named(emt_file, tmp_path, capsys):
    cli_error(capsys, train_args(emt_file, tmp_path / 'run', '--model-arg',
                                  'max_z=5'),
              'max_z=5 (--model-arg) is below the largest atomic number')


def test_max_z_above_100_trains(emt_file, tmp_path):
    assert main(train_args(emt_file, tmp_path / 'run', '--epochs', '1',
                           '--model-arg', 'max_z=110')) == 0


def test_huge_grids_are_refused_before_they_are_built():
    from pyg_schnet.interpret import distance_sum_surface, vdw_surface
    data = from_smiles('CCO')
    with pytest.raises(MemoryError, match='points would need about'):
        vdw_surface(data, density=1e9)
    with pytest.raises(MemoryError, match='rays'):
        distance_sum_surface(data, 30.0, directions=10**7)


def test_a_full_disk_is_named(tmp_path, monkeypatch):
    import errno

    from pyg_schnet.io import DiskFullError, atomic_write_text
    target = tmp_path / 'out.txt'
    target.write_text('before')

    def full(self, *args, **kwargs):
        raise OSError(errno.ENOSPC, 'No space left on device')

    monkeypatch.setattr('pathlib.Path.write_text', full)
    with pytest.raises(DiskFullError, match=r'No space left on device '
                       r'while writing .*out.txt'):
        atomic_write_text(target, 'after')
    monkeypatch.undo()
    assert target.read_text() == 'before'
    assert [p.name for p in tmp_path.iterdir()] == ['out.txt']


def test_a_full_disk_inside_torch_save_is_named(tmp_path, monkeypatch):
    # torch.save says "file write failed"; with the disk (nearly) full the
    # error says what happened.
    import shutil as shutil_module
    from collections import namedtuple

    from pyg_schnet.io import DiskFullError, atomic_torch_save

    def failing(*args, **kwargs):
        raise RuntimeError('[enforce fail at inline_container.cc:626] . '
                           'PytorchStreamWriter failed writing file '
                           'data/0: file write failed')

    usage = namedtuple('usage', 'total used free')
    monkeypatch.setattr(torch, 'save', failing)
    monkeypatch.setattr(shutil_module, 'disk_usage',
                        lambda path: usage(10**9, 10**9, 0))
    with pytest.raises(DiskFullError, match='0.0 MB left'):
        atomic_torch_save({'x': 1}, tmp_path / 'a.pt')


# -- md on the command line (cases 3, 4, 5) ----------------------------------

@pytest.fixture(scope='module')
def md_run(emt_file, tmp_path_factory):
    run = tmp_path_factory.mktemp('mdrun') / 'run'
    assert main(train_args(emt_file, run, '--epochs', '1')) == 0
    return run


def _structure(tmp_path, name='start.extxyz', change=None):
    atoms = bulk('Cu', 'fcc', a=3.6) * (2, 1, 1)
    if change is not None:
        change(atoms)
    path = tmp_path / name
    ase.io.write(path, atoms)
    return path


def test_md_never_writes_over_its_input(md_run, tmp_path, capsys):
    start = _structure(tmp_path)
    before = start.read_bytes()
    for extra, match in ((['--out', str(start), '--overwrite'],
                          '--out {} is the input structure'),
                         (['--out', str(tmp_path / 'md.extxyz'), '--log',
                           str(start), '--overwrite'],
                          '--log {} is the input structure')):
        cli_error(capsys, ['md', str(md_run), str(start), '--steps', '2',
                            *extra], match.format(start))
    same = str(tmp_path / 'x.extxyz')
    cli_error(capsys, ['md', str(md_run), str(start), '--steps', '2',
                        '--out', same, '--log', same],
              '--out and --log are the same file')
    assert start.read_bytes() == before


@pytest.mark.parametrize('change, match', [
    (lambda a: a.positions.__setitem__(1, a.positions[0]),
     'overlapping atoms'),
    (lambda a: a.positions.__setitem__((0, 0), np.nan), 'not finite'),
])
def test_md_cli_refuses_bad_structures(md_run, tmp_path, capsys, change,
                                       match):
    start = _structure(tmp_path, change=change)
    cli_error(capsys, ['md', str(md_run), str(start), '--steps', '2',
                        '--out', str(tmp_path / 'md.extxyz')], match)
    assert not list(tmp_path.glob('md.*'))


def test_md_cli_stops_exploding_dynamics(tmp_path, capsys):
    path = tmp_path / 'ethanol.xyz'
    ase.io.write(path, molecule('CH3CH2OH'))
    out = tmp_path / 'md.extxyz'
    err = cli_error(capsys, ['md', 'schnet-qm9-U0', str(path), '--dt',
                              '50', '--thermostat', 'none',
                              '--temperature', '3000', '--steps', '300',
                              '--out', str(out)], 'the dynamics blew up')
    assert f'{out}.partial' in err and not out.exists()


def test_md_cli_float64_and_one_bead(md_run, tmp_path, capsys):
    start = _structure(tmp_path)
    assert main(['md', str(md_run), str(start), '--steps', '4', '--every',
                 '2', '--float64', '--out',
                 str(tmp_path / 'md.extxyz')]) == 0
    out = capsys.readouterr().out
    assert ' 1 bead, ' in out and '1 beads' not in out
