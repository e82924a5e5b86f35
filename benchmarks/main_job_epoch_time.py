"""Seconds per epoch of the main job's training loop, this checkout against
an earlier commit (default 0517d90, the code before the speed work):
QM9 U0, 1,000 training and 1,000 validation molecules, batches of 32, the
default SchNet, energy only.

    .venv/bin/python benchmarks/main_job_epoch_time.py \
        [--baseline REV] [--rounds 2]

Each measurement is a fresh process running `pyg_schnet.train.train` for 1
and for 6 epochs; (time of 6 - time of 1) / 5 is one epoch (training and
validation), without start-up, data loading and testing. The two codes
alternate call by call, in rotating order. The baseline is checked out
with `git worktree` into a temporary folder and imported ahead of the
installed package. Run it on an otherwise idle machine.
"""
import argparse
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CHILD = r'''
import shutil, sys, tempfile, time
sys.path.insert(0, sys.argv[1])
import pyg_schnet
assert pyg_schnet.__file__.startswith(sys.argv[1]), pyg_schnet.__file__
from pyg_schnet.train import TrainConfig, train
run = tempfile.mkdtemp()
config = TrainConfig(n_train=1000, n_val=1000, n_test=100,
                     epochs=int(sys.argv[2]), max_time=None, run_dir=run,
                     progress=False, early_stopping=1000)
start = time.perf_counter()
train(config, log=lambda *args, **kwargs: None)
print(time.perf_counter() - start)
shutil.rmtree(run)
'''


def wall(code: Path, epochs: int) -> float:
    out = subprocess.run([sys.executable, '-c', CHILD, str(code),
                          str(epochs)], capture_output=True, text=True,
                         check=True, cwd=tempfile.gettempdir())
    return float(out.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--baseline', default='0517d90')
    parser.add_argument('--rounds', type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        old = Path(tmp) / 'baseline'
        subprocess.run(['git', '-C', str(ROOT), 'worktree', 'add',
                        '--detach', str(old), args.baseline], check=True,
                       capture_output=True)
        try:
            codes = {args.baseline: old, 'this checkout': ROOT}
            times = {name: [] for name in codes}
            for k in range(args.rounds):
                order = list(codes.items())[::(-1) ** k]
                one = {name: wall(code, 1) for name, code in order}
                six = {name: wall(code, 6) for name, code in order}
                for name in codes:
                    times[name].append((six[name] - one[name]) / 5)
                    print(f'round {k + 1}: {name}: '
                          f'{times[name][-1]:.2f} s/epoch', flush=True)
        finally:
            subprocess.run(['git', '-C', str(ROOT), 'worktree', 'remove',
                            '--force', str(old)], check=False)
    base = statistics.median(times[args.baseline])
    for name, values in times.items():
        median = statistics.median(values)
        print(f'{name}: {median:.2f} s/epoch [{min(values):.2f}, '
              f'{max(values):.2f}], {1 / median:.3f} epochs/s, '
              f'{base / median:.2f}x the baseline')


if __name__ == '__main__':
    main()
