"""QM9 U0 learning curve (the thesis' Abb. 6 left): test MAE (eV) against
the number of training molecules, for SchNet with T = 1, 2, 3, 6
interactions and for DTNN, each trained to convergence with
`pyg_schnet.train.train` (the code path of `pyg-schnet train`).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/qm9_learning_curve.py \
        --sizes 1000 5000 --models schnet-T1 schnet-T2 schnet-T3 \
        schnet-T6 dtnn dtnn-glorot

Converged means: no time limit; the learning rate halves after
--lr-patience epochs without a better validation loss, down to --min-lr,
and training stops after --early-stopping epochs without one (or at
--epochs). 1,000 validation and 10,000 test molecules (seed 0), batches of
32, lr 1e-3, EMA 0.99. `dtnn` is DTNN with the original code's
initialisation (the default), `dtnn-glorot` the same network initialised
like the other layers (Glorot uniform, N(0, 1) embeddings).

Runs on CUDA unchanged (`--device auto` picks a GPU when there is one).
Writes benchmarks/results/learning_curve.{csv,md,png}; finished points are
kept in the CSV and skipped on a rerun; a point cut off before it finished
(session end, kill) is resumed from its last checkpoint by the same command
(`--restart` starts it afresh). Several processes may share the
work (each with its own --models); `--collect` rebuilds the table from the
finished runs in benchmarks/results/runs; `--stopped MODEL N` records a
run killed by hand once its learning rate sat at the floor (its best
checkpoint on the test set; "session end (lr at floor)" in the table; run
it with the training's OMP_NUM_THREADS, which the hardware column records).
Each row records its epochs, wall
time, stopping reason, final learning rate, final training MAE and the
hardware. Published full-data figures: SchNet 0.014 eV (110k), DTNN
~0.036 eV (100k); the thesis' 25k point is below 0.043 eV for T >= 2.
"""
import argparse
import csv
import json
import os
import shutil
from pathlib import Path
from typing import Optional

from pyg_schnet.io import RunLock, RunLockedError
from pyg_schnet.train import TrainConfig, resume_config, train
from pyg_schnet.train.config import default_data_root
from pyg_schnet.train.evaluate import CHEMICAL_ACCURACY_EV
from pyg_schnet.train.hardware import describe_hardware
from pyg_schnet.train.history import read_history

RESULTS = Path(__file__).parent / 'results'
FIELDS = ['model', 'n_train', 'test_mae_eV', 'test_rmse_eV',
          'final_train_mae_eV', 'best_val_mae_eV', 'best_epoch',
          'epochs_run', 'stopped_by', 'final_lr', 'train_minutes',
          'protocol', 'device', 'hardware']


def model_config(spec: str) -> dict:
    if spec.startswith('schnet-T'):
        return dict(model='schnet', interactions=int(spec[len('schnet-T'):]))
    if spec == 'dtnn':
        return dict(model='dtnn')
    if spec == 'dtnn-glorot':
        return dict(model='dtnn', model_kwargs={'init': 'glorot'})
    raise ValueError(f'unknown model spec {spec} (schnet-T<k>, dtnn, '
                     f'dtnn-glorot)')


def read_rows(path: Path) -> list:
    if not path.exists():
        return []
    with open(path, newline='') as f:
        return list(csv.DictReader(f))


def write_outputs(rows: list) -> None:
    from pyg_schnet.io import atomic_path, atomic_write_csv, atomic_write_text

    rows = sorted(rows, key=lambda r: (r['protocol'], r['model'],
                                       int(r['n_train'])))
    atomic_write_csv(RESULTS / 'learning_curve.csv', rows, FIELDS)
    lines = ['| model | N train | test MAE (eV) | final train MAE (eV) | '
             'best val MAE (eV) | best epoch / run | stopped by | final lr '
             '| minutes | protocol | hardware |',
             '|---|---|---|---|---|---|---|---|---|---|---|']
    for r in rows:
        lines.append(
            f"| {r['model']} | {r['n_train']} | "
            f"{float(r['test_mae_eV']):.4f} | {_f(r['final_train_mae_eV'])} "
            f"| {_f(r['best_val_mae_eV'])} | {r['best_epoch']} / "
            f"{r['epochs_run']} | {r['stopped_by']} | {r['final_lr']} | "
            f"{r['train_minutes']} | {r['protocol']} | {r['hardware']} |")
    running = running_rows()
    if running:
        lines += ['', 'Not finished yet (checkpoints in benchmarks/results/'
                  'runs, git-ignored; the command resumes them):', '',
                  '| model | N train | epochs so far | best val MAE (eV) | '
                  'at epoch | lr now | minutes so far | resume with |',
                  '|---|---|---|---|---|---|---|---|'] + running
    atomic_write_text(RESULTS / 'learning_curve.md', '\n'.join(lines) + '\n')
    try:
        import matplotlib
        matplotlib.use('Agg')
        import matplotlib.pyplot as plt
    except ImportError:
        return
    from matplotlib.ticker import FuncFormatter
    fig, ax = plt.subplots(figsize=(6.5, 4.6))
    converged = [r for r in rows if r['protocol'] == 'converged']
    colours = {}
    for k, model in enumerate(sorted({r['model'] for r in converged})):
        pts = sorted((int(r['n_train']), float(r['test_mae_eV']))
                     for r in converged if r['model'] == model)
        colours[model] = f'C{k}'
        ax.loglog(*zip(*pts, strict=True), 'o-', color=colours[model],
                  label=model)
    # The shipped pretrained models (110,000 molecules, same test set; not
    # trained to convergence), for scale.
    from pyg_schnet.models import list_pretrained
    from pyg_schnet.models.pretrained import PRETRAINED_DIR
    for name in list_pretrained():
        card = json.loads((PRETRAINED_DIR / f'{name}.json').read_text())
        if card['target'] != 'U0':
            continue
        ax.loglog([card['split']['train']], [card['test_mae_eV']], 's',
                  mfc='none', color='k' if card['model'] == 'schnet'
                  else '0.5', label=f"{name} ({card['epochs_trained']} "
                  f"epochs, not converged)")
    ax.axhline(CHEMICAL_ACCURACY_EV, color='k', ls='--', lw=1,
               label='chemical accuracy')
    plain = FuncFormatter(lambda v, _: f'{v:g}')
    ax.yaxis.set_major_formatter(plain)
    ax.yaxis.set_minor_formatter(plain)
    ax.set_xlabel('training molecules')
    ax.set_ylabel('QM9 U0 test MAE (eV)')
    ax.set_title('QM9 U0, trained to convergence (1,000 val / 10,000 test)',
                 fontsize=10)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3, which='both')
    fig.tight_layout()
    with atomic_path(RESULTS / 'learning_curve.png') as tmp:
        fig.savefig(tmp, dpi=120, format='png')


def running_rows() -> list:
    r"""Table rows of the points whose runs started but have no results
    yet: how far they are, from their metrics.csv."""
    from pyg_schnet.train.history import read_history

    rows = []
    for run_dir in sorted((RESULTS / 'runs').glob('*_*_*')):
        if (run_dir / 'results.json').exists() or \
                not (run_dir / 'metrics.csv').exists():
            continue
        spec, n, _ = run_dir.name.rsplit('_', 2)
        history = read_history(run_dir / 'metrics.csv')
        if not history:
            continue
        best = min(history, key=lambda r: r.get('val_loss', float('inf')))
        minutes = sum(r.get('seconds', 0.0) for r in history) / 60
        rows.append(
            f"| {spec} | {n} | {int(history[-1]['epoch'])} | "
            f"{best['val_U0_mae']:.4f} | {int(best['epoch'])} | "
            f"{history[-1]['lr']:.1e} | {minutes:.0f} | `OMP_NUM_THREADS=1 "
            f".venv/bin/python benchmarks/qm9_learning_curve.py --sizes {n} "
            f"--models {spec}` |")
    return rows


def _f(text: str) -> str:
    return f'{float(text):.4f}' if text not in ('', None) else '—'


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.
                                     RawDescriptionHelpFormatter)
    parser.add_argument('--sizes', type=int, nargs='+', default=[1000])
    parser.add_argument('--models', nargs='+', default=['schnet-T6'])
    parser.add_argument('--epochs', type=int, default=2000)
    parser.add_argument('--lr-patience', type=int, default=10)
    parser.add_argument('--min-lr', type=float, default=1e-5)
    parser.add_argument('--early-stopping', type=int, default=40)
    parser.add_argument('--n-val', type=int, default=1000)
    parser.add_argument('--n-test', type=int, default=10000)
    parser.add_argument('--batch-size', type=int, default=32)
    parser.add_argument('--device', default='auto')
    parser.add_argument('--root', default=default_data_root())
    parser.add_argument('--restart', action='store_true',
                        help='start a point afresh even when its run folder '
                        'holds a cut-off run (by default it is resumed)')
    parser.add_argument('--collect', action='store_true',
                        help='only rebuild the table from the finished '
                        'runs in results/runs')
    parser.add_argument('--stopped', nargs=2, metavar=('MODEL', 'N'),
                        help='record a run stopped by hand (killed with its '
                        'learning rate at the floor): the test MAE of its '
                        'best checkpoint, stopped_by saying so')
    args = parser.parse_args()
    import torch
    device = 'cuda' if args.device == 'auto' and torch.cuda.is_available() \
        else ('cpu' if args.device == 'auto' else args.device)
    RESULTS.mkdir(exist_ok=True)
    if args.stopped:
        spec, n = args.stopped[0], int(args.stopped[1])
        record(row_from_stopped_run(spec, n, device,
                                    RESULTS / 'runs' / f'{spec}_{n}_{device}'))
        return
    if args.collect:
        for run_dir in sorted((RESULTS / 'runs').glob('*_*_*')):
            if (run_dir / 'results.json').exists():
                spec, n, dev = run_dir.name.rsplit('_', 2)
                record(row_from_run(spec, int(n), dev, run_dir))
        write_outputs(read_rows(RESULTS / 'learning_curve.csv'))
        return
    for spec in args.models:
        for n in args.sizes:
            # Other processes may share the work and the CSV: a point is
            # claimed (a lock the kernel releases when its holder dies)
            # before its folder is cleared, and the CSV is read again.
            name = f'{spec}_{n}_{device}'
            claim = RunLock(RESULTS / 'runs' / '.claims' / name)
            try:
                claim.acquire()
            except RunLockedError:
                print(f'{spec} N={n} on {device}: another process is '
                      f'measuring it')
                continue
            try:
                measure_point(args, spec, n, device)
            finally:
                claim.release()


def measure_point(args, spec: str, n: int, device: str) -> None:
    done = {(r['model'], int(r['n_train']), r['device'])
            for r in read_rows(RESULTS / 'learning_curve.csv')
            if r['protocol'] == 'converged'}
    if (spec, n, device) in done:
        print(f'{spec} N={n} on {device}: already measured')
        return
    run_dir = RESULTS / 'runs' / f'{spec}_{n}_{device}'
    if (run_dir / 'config.yaml').exists() and not args.restart:
        # A point cut off (session end, kill) continues from its last
        # checkpoint, with the protocol it was started with.
        print(f'{spec} N={n} on {device}: resuming {run_dir}')
        train(resume_config(run_dir, {'epochs': args.epochs}), resume=True)
        finish_point(spec, n, device, run_dir)
        return
    shutil.rmtree(run_dir, ignore_errors=True)
    config = TrainConfig(root=args.root, n_train=n, n_val=args.n_val,
                         n_test=args.n_test, epochs=args.epochs,
                         max_time=None, batch_size=args.batch_size,
                         lr_patience=args.lr_patience,
                         min_lr=args.min_lr,
                         early_stopping=args.early_stopping,
                         device=device, run_dir=str(run_dir),
                         progress=False, **model_config(spec))
    train(config)
    finish_point(spec, n, device, run_dir)


def finish_point(spec: str, n: int, device: str, run_dir: Path) -> None:
    r"""Records a finished point and drops its checkpoints (the run's
    model.pt, metrics and results stay)."""
    record(row_from_run(spec, n, device, run_dir))
    for name in os.listdir(run_dir / 'checkpoints'):
        os.remove(run_dir / 'checkpoints' / name)


def row_from_stopped_run(spec: str, n: int, device: str,
                         run_dir: Path) -> dict:
    r"""The table row of a run stopped by hand: its best checkpoint on the
    test set, its epochs and training time from the last checkpoint."""
    from torch_geometric.loader import DataLoader

    from pyg_schnet.train.checkpoint import read_checkpoint
    from pyg_schnet.train.evaluate import evaluate_model
    from pyg_schnet.train.run import RunPaths, checkpoint_model

    model, info, (_, _, test_set), _ = checkpoint_model(run_dir, 'best')
    test = evaluate_model(model, DataLoader(test_set, batch_size=32),
                          info.name)
    state = read_checkpoint(RunPaths(run_dir).last)['callbacks'][
        'RunCheckpoint']
    result = {'test_mae': test[f'{info.name}_mae'],
              'test_rmse': test[f'{info.name}_rmse'],
              'epochs': state['best_epoch'] + 1,
              'epochs_run': state['epochs_done'],
              'stopped_by': 'session end (lr at floor)',
              'train_minutes': round(state['seconds'] / 60, 2)}
    return row_from_run(spec, n, device, run_dir, result)


def row_from_run(spec: str, n: int, device: str, run_dir: Path,
                 result: Optional[dict] = None) -> dict:
    r"""The table row of a finished converged run, from its files."""
    if result is None:
        result = json.loads((run_dir / 'results.json').read_text())
    history = read_history(run_dir / 'metrics.csv')
    best = min(history, key=lambda r: r.get('val_loss', 1e300))
    return {'model': spec, 'n_train': n,
            'test_mae_eV': result['test_mae'],
            'test_rmse_eV': result['test_rmse'],
            'final_train_mae_eV': history[-1].get('train_U0_mae', ''),
            'best_val_mae_eV': best.get('val_U0_mae', ''),
            'best_epoch': result['epochs'],
            'epochs_run': result['epochs_run'],
            'stopped_by': result['stopped_by'],
            'final_lr': f"{history[-1]['lr']:.1e}",
            'train_minutes': result['train_minutes'],
            'protocol': 'converged', 'device': device,
            'hardware': result.get('hardware') or describe_hardware(device)}


def record(row: dict) -> None:
    r"""Adds (or replaces) one row of the CSV, read just before."""
    key = (row['model'], str(row['n_train']), row['device'])
    rows = [r for r in read_rows(RESULTS / 'learning_curve.csv')
            if (r['model'], str(r['n_train']), r['device']) != key]
    write_outputs(rows + [row])


if __name__ == '__main__':
    main()
