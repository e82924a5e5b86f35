"""The main job's defaults, chosen by measurement: QM9 U0 test MAE after
the main job's training budget (11 minutes on the CPU) for several
training-set sizes and settings, each on the same 10,000 test molecules
(pyg_schnet.data.qm9_split).

    .venv/bin/python benchmarks/main_job_grid.py [--variants N1000 N2000 ...]

Run it on an otherwise idle machine: the budget is wall-clock time, so the
MAE depends on the machine's speed. Writes
benchmarks/results/main_job_grid.{csv,md}; measured variants are kept and
skipped on a rerun.
"""
import argparse
import csv
import shutil
from pathlib import Path

import torch

from pyg_schnet.train import TrainConfig, train
from pyg_schnet.train.hardware import describe_hardware

RESULTS = Path(__file__).parent / 'results'
FIELDS = ['variant', 'settings', 'test_mae_eV', 'test_rmse_eV',
          'best_epoch', 'epochs_run', 'stopped_by', 'train_minutes',
          'threads', 'hardware']

VARIANTS = {
    'N1000': dict(n_train=1000),
    'N2000': dict(n_train=2000),
    'N5000': dict(n_train=5000),
    'N10000': dict(n_train=10000),
    'N20000': dict(n_train=20000),
    'N5000-b16': dict(n_train=5000, batch_size=16),
    'N5000-lr5e-4': dict(n_train=5000, lr=5e-4),
    'N10000-b64': dict(n_train=10000, batch_size=64, lr=2e-3),
}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--variants', nargs='+',
                        default=['N1000', 'N2000', 'N5000', 'N10000'])
    parser.add_argument('--max-time', type=float, default=11.0)
    args = parser.parse_args()
    from pyg_schnet.allocator import tune_allocator
    tune_allocator()  # as the pyg-schnet command does
    path = RESULTS / 'main_job_grid.csv'
    rows = []
    if path.exists():
        with open(path, newline='') as f:
            rows = list(csv.DictReader(f))
    done = {r['variant'] for r in rows}
    for name in args.variants:
        if name in done:
            print(f'{name}: already measured')
            continue
        settings = VARIANTS[name]
        run_dir = RESULTS / 'runs' / f'grid_{name}'
        shutil.rmtree(run_dir, ignore_errors=True)
        result = train(TrainConfig(max_time=args.max_time, progress=False,
                                   run_dir=str(run_dir), **settings))
        rows.append({
            'variant': name,
            'settings': ' '.join(f'{k}={v}' for k, v in settings.items()),
            'test_mae_eV': result['test_mae'],
            'test_rmse_eV': result['test_rmse'],
            'best_epoch': result['epochs'], 'epochs_run': result['epochs_run'],
            'stopped_by': result['stopped_by'],
            'train_minutes': result['train_minutes'],
            'threads': torch.get_num_threads(),
            'hardware': describe_hardware()})
        _write(rows)
        shutil.rmtree(run_dir / 'checkpoints', ignore_errors=True)


def _write(rows) -> None:
    from pyg_schnet.io import atomic_write_csv, atomic_write_text
    atomic_write_csv(RESULTS / 'main_job_grid.csv', rows, FIELDS)
    lines = ['| variant | settings | test MAE (eV) | RMSE (eV) | best epoch '
             '/ run | stopped by | minutes | threads |',
             '|---|---|---|---|---|---|---|---|']
    lines += [f"| {r['variant']} | {r['settings']} | "
              f"{float(r['test_mae_eV']):.4f} | "
              f"{float(r['test_rmse_eV']):.4f} | {r['best_epoch']} / "
              f"{r['epochs_run']} | {r['stopped_by']} | {r['train_minutes']} "
              f"| {r['threads']} |" for r in rows]
    atomic_write_text(RESULTS / 'main_job_grid.md', '\n'.join(lines) + '\n')


if __name__ == '__main__':
    main()
