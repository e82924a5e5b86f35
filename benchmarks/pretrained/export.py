"""Puts a trained QM9 model into the package as a pretrained model, with its
card: what it predicts, how it was trained, and its test error on the fixed
held-out test set (the README main job's 10,000 test molecules, see
make_split.py).

    .venv/bin/python benchmarks/pretrained/export.py RUN_DIR NAME \
        --command "pyg-schnet train ..." [--checkpoint best] [--note TEXT]

Works on a finished run and on one that is still training (its best
checkpoint). Writes pyg_schnet/pretrained/NAME.pt and NAME.json atomically.
"""
import argparse
import json
import statistics
import sys

import torch
from torch_geometric.loader import DataLoader

from pyg_schnet.io import atomic_write_text
from pyg_schnet.models import save_model
from pyg_schnet.models.pretrained import PRETRAINED_DIR
from pyg_schnet.train.checkpoint import read_checkpoint
from pyg_schnet.train.evaluate import evaluate_model
from pyg_schnet.train.hardware import cpu_name
from pyg_schnet.train.history import read_history
from pyg_schnet.train.run import RunPaths, checkpoint_model

#: Test molecules the package test re-evaluates (the first of the test set).
CHECK_SUBSET = 500


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('run_dir')
    parser.add_argument('name')
    parser.add_argument('--command', action='append', required=True,
                        help='the training command(s), in order')
    parser.add_argument('--checkpoint', default='best',
                        choices=['best', 'last'])
    parser.add_argument('--hardware', default=None)
    parser.add_argument('--note', default='')
    args = parser.parse_args()
    paths = RunPaths(args.run_dir)
    model, info, (train_set, val_set, test_set), config = \
        checkpoint_model(paths.root, args.checkpoint)
    state = read_checkpoint(paths.best if args.checkpoint == 'best' else
                            paths.last)
    run_state = state.get('callbacks', {}).get('RunCheckpoint', {})
    rows = read_history(paths.metrics)
    seconds = [r['seconds'] for r in rows if 'seconds' in r]
    known = sum(seconds)
    missing = len(rows) - len(seconds)
    if missing and seconds:  # epochs logged before epoch times were kept
        known += missing * statistics.median(seconds)
    loader = DataLoader(test_set, batch_size=128)
    test = evaluate_model(model, loader, info.name)
    check = evaluate_model(model, DataLoader(test_set[:CHECK_SUBSET],
                                             batch_size=128), info.name)
    threads = torch.get_num_threads()
    card = {
        'name': args.name, 'model': config.model,
        'architecture': repr(model),
        'parameters': sum(p.numel() for p in model.parameters()),
        'target': info.name, 'unit': info.unit,
        'dataset': 'QM9 (130,831 molecules, PyPI qm9pack), B3LYP/6-31G(2df,p)',
        'split': {'made_by': 'benchmarks/pretrained/make_split.py',
                  'seed': 0, 'train': len(train_set), 'val': len(val_set),
                  'test': len(test_set),
                  'test_is': "the README main job's test set"},
        'training_commands': args.command,
        'checkpoint': args.checkpoint,
        'epochs_trained': len(rows),
        'best_epoch': int(state['epoch']) + 1,
        'best_val_loss': run_state.get('best_score'),
        'train_hours': round(known / 3600, 2),
        'hardware': args.hardware or f'{cpu_name()}, 1 of 2 cores '
                                     f'(OMP_NUM_THREADS=1), no GPU',
        'test_mae_eV': test[f'{info.name}_mae'],
        'test_rmse_eV': test[f'{info.name}_rmse'],
        'test_count': test['count'],
        'check_subset': {'first_test_molecules': CHECK_SUBSET,
                         'mae_eV': check[f'{info.name}_mae']},
        'note': args.note,
        'torch': torch.__version__, 'python': sys.version.split()[0],
        'evaluated_with_threads': threads,
    }
    PRETRAINED_DIR.mkdir(exist_ok=True)
    save_model(model, PRETRAINED_DIR / f'{args.name}.pt', metadata={
        'target': info.name, 'unit': info.unit, 'readout': info.readout,
        'dataset': 'qm9', 'forces': False, 'periodic': False,
        'test_mae': card['test_mae_eV']})
    atomic_write_text(PRETRAINED_DIR / f'{args.name}.json',
                      json.dumps(card, indent=2) + '\n')
    print(json.dumps({k: card[k] for k in (
        'name', 'epochs_trained', 'best_epoch', 'train_hours',
        'test_mae_eV', 'test_count')}, indent=2))


if __name__ == '__main__':
    main()
