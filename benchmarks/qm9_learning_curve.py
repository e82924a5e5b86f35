"""QM9 U0 learning curve: test MAE (eV) against the number of training
molecules, for SchNet with T = 1..6 interactions and for DTNN, each trained
with `pyg_schnet.train.train` (the same code path as `pyg-schnet train`).

    .venv/bin/python benchmarks/qm9_learning_curve.py \
        --sizes 1000 5000 25000 --models schnet-T6 dtnn --max-time 60

Runs on CUDA unchanged (`--device auto` picks a GPU when there is one).
Writes benchmarks/results/learning_curve.{csv,md,png}; finished points are
kept in the CSV and skipped on a rerun. The thesis' goal for 25k+ training
molecules is chemical accuracy (0.043 eV); published full-data figures:
SchNet 0.014 eV (110k), DTNN ~0.036 eV (100k).
"""
import argparse
import csv
import os
import shutil
from pathlib import Path

from pyg_schnet.train import TrainConfig, train
from pyg_schnet.train.config import default_data_root
from pyg_schnet.train.run import CHEMICAL_ACCURACY_EV

RESULTS = Path(__file__).parent / 'results'
FIELDS = ['model', 'n_train', 'test_mae_eV', 'test_rmse_eV', 'epochs',
          'train_minutes', 'max_time_min', 'device']


def model_config(spec: str) -> dict:
    if spec.startswith('schnet-T'):
        return dict(model='schnet', interactions=int(spec[len('schnet-T'):]))
    if spec == 'dtnn':
        return dict(model='dtnn')
    raise ValueError(f'unknown model spec {spec} (schnet-T1..6 or dtnn)')


def read_rows(path: Path) -> list:
    if not path.exists():
        return []
    with open(path, newline='') as f:
        return list(csv.DictReader(f))


def write_outputs(rows: list) -> None:
    from pyg_schnet.io import atomic_path, atomic_write_text

    rows = sorted(rows, key=lambda r: (r['model'], int(r['n_train'])))
    with atomic_path(RESULTS / 'learning_curve.csv') as tmp:
        with open(tmp, 'w', newline='') as f:
            writer = csv.DictWriter(f, fieldnames=FIELDS)
            writer.writeheader()
            writer.writerows(rows)
    lines = ['| model | N train | test MAE (eV) | best epoch | minutes '
             '| device |',
             '|---|---|---|---|---|---|']
    lines += [f"| {r['model']} | {r['n_train']} | "
              f"{float(r['test_mae_eV']):.4f} | {r['epochs']} | "
              f"{r['train_minutes']} | {r['device']} |" for r in rows]
    atomic_write_text(RESULTS / 'learning_curve.md', '\n'.join(lines) + '\n')
    try:
        import matplotlib
        matplotlib.use('Agg')
        import matplotlib.pyplot as plt
    except ImportError:
        return
    fig, ax = plt.subplots(figsize=(5, 4))
    for model in sorted({r['model'] for r in rows}):
        pts = [(int(r['n_train']), float(r['test_mae_eV'])) for r in rows
               if r['model'] == model]
        ax.loglog(*zip(*pts, strict=True), 'o-', label=model)
    ax.axhline(CHEMICAL_ACCURACY_EV, color='k', ls='--', lw=1,
               label='chemical accuracy')
    ax.set_xlabel('training molecules')
    ax.set_ylabel('QM9 U0 test MAE (eV)')
    ax.legend()
    fig.tight_layout()
    with atomic_path(RESULTS / 'learning_curve.png') as tmp:
        fig.savefig(tmp, dpi=120, format='png')


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.
                                     RawDescriptionHelpFormatter)
    parser.add_argument('--sizes', type=int, nargs='+', default=[1000])
    parser.add_argument('--models', nargs='+', default=['schnet-T6'])
    parser.add_argument('--max-time', type=float, default=11.0,
                        help='minutes of training per point')
    parser.add_argument('--epochs', type=int, default=1000)
    parser.add_argument('--n-val', type=int, default=1000)
    parser.add_argument('--n-test', type=int, default=10000)
    parser.add_argument('--batch-size', type=int, default=32)
    parser.add_argument('--device', default='auto')
    parser.add_argument('--root', default=default_data_root())
    args = parser.parse_args()
    import torch
    device = 'cuda' if args.device == 'auto' and torch.cuda.is_available() \
        else ('cpu' if args.device == 'auto' else args.device)
    RESULTS.mkdir(exist_ok=True)
    rows = read_rows(RESULTS / 'learning_curve.csv')
    done = {(r['model'], int(r['n_train']), r['device']) for r in rows}
    for spec in args.models:
        for n in args.sizes:
            if (spec, n, device) in done:
                print(f'{spec} N={n} on {device}: already measured')
                continue
            run_dir = RESULTS / 'runs' / f'{spec}_{n}_{device}'
            shutil.rmtree(run_dir, ignore_errors=True)
            config = TrainConfig(root=args.root, n_train=n, n_val=args.n_val,
                                 n_test=args.n_test, epochs=args.epochs,
                                 max_time=args.max_time,
                                 batch_size=args.batch_size,
                                 early_stopping=50, device=device,
                                 run_dir=str(run_dir), progress=False,
                                 **model_config(spec))
            result = train(config)
            rows.append({'model': spec, 'n_train': n,
                         'test_mae_eV': result['test_mae'],
                         'test_rmse_eV': result['test_rmse'],
                         'epochs': result['epochs'],
                         'train_minutes': result['train_minutes'],
                         'max_time_min': args.max_time, 'device': device})
            write_outputs(rows)
            for name in os.listdir(run_dir / 'checkpoints'):
                os.remove(run_dir / 'checkpoints' / name)


if __name__ == '__main__':
    main()
