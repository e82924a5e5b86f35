"""The newcomer's commands on an idle and on a loaded machine: the main job
(`pyg-schnet train`, no options) and a short ring-polymer MD of a small
molecule, each run as a new user runs it (package defaults: threads by the
package's rule), once as the machine is and once with --burners
busy-looping processes beside it.

    .venv/bin/python benchmarks/newcomer.py [--burners 2] [--skip-main-job]

Prints the main job's test MAE, epochs, wall time and threads, and the MD
step time, for both; the goal: the same MAE within ±0.005 eV and MD within
2x of the idle step time. Run it with nothing else on the machine for the
idle numbers (the load average is printed). The runs go to a temporary
folder; QM9 is read from $PYG_SCHNET_DATA (or ~/.cache/pyg_schnet).
"""
import argparse
import json
import multiprocessing
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = Path(sys.executable).parent


def _burn() -> None:  # pragma: no cover - a load generator
    while True:
        pass


def _run(command, cwd):
    env = {k: v for k, v in os.environ.items() if k != 'OMP_NUM_THREADS'}
    start = time.perf_counter()
    proc = subprocess.run(command, cwd=cwd, capture_output=True, text=True,
                          env=env)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f'{" ".join(command)} failed:\n{proc.stderr[-3000:]}')
    return proc.stdout, seconds


def measure(folder: Path, main_job: bool) -> dict:
    out = {'load_start': os.getloadavg()[0]}
    if main_job:
        stdout, seconds = _run([str(BIN / 'pyg-schnet'), 'train'], folder)
        results = json.loads((folder / 'runs' / 'latest' /
                              'results.json').read_text())
        out.update(main_job_mae=results['test_mae'],
                   main_job_epochs=results['epochs_run'],
                   main_job_minutes=round(seconds / 60, 2),
                   main_job_threads=results['threads'])
    import ase.io
    from ase.build import molecule
    ase.io.write(folder / 'ethanol.xyz', molecule('CH3CH2OH'))
    stdout, _ = _run([str(BIN / 'pyg-schnet'), 'md', 'schnet-qm9-U0',
                      'ethanol.xyz', '--steps', '300', '--beads', '4',
                      '--out', 'md.extxyz', '--overwrite'], folder)
    out['md_ms_per_step'] = float(re.search(r'\(([\d.]+) ms per step\)',
                                            stdout).group(1))
    out['md_threads'] = int(re.search(r'(\d+) threads?', stdout).group(1))
    out['load_end'] = os.getloadavg()[0]
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--burners', type=int, default=2)
    parser.add_argument('--skip-main-job', action='store_true',
                        help='only the MD step (minutes instead of ~40)')
    parser.add_argument('--only', choices=['idle', 'loaded'],
                        help='one of the two conditions')
    args = parser.parse_args()
    rows = {}
    for condition in ('idle', 'loaded'):
        if args.only and condition != args.only:
            continue
        burners = []
        if condition == 'loaded':
            burners = [multiprocessing.Process(target=_burn, daemon=True)
                       for _ in range(args.burners)]
            for p in burners:
                p.start()
            time.sleep(20)  # let the load average see them
        try:
            with tempfile.TemporaryDirectory() as tmp:
                rows[condition] = measure(Path(tmp), not args.skip_main_job)
        finally:
            for p in burners:
                p.terminate()
        print(condition, json.dumps(rows[condition]), flush=True)
    if len(rows) == 2:
        idle, loaded = rows['idle'], rows['loaded']
        if 'main_job_mae' in idle:
            print(f"main job MAE: idle {idle['main_job_mae']:.4f} eV, "
                  f"loaded {loaded['main_job_mae']:.4f} eV (difference "
                  f"{loaded['main_job_mae'] - idle['main_job_mae']:+.4f}); "
                  f"{idle['main_job_minutes']} vs "
                  f"{loaded['main_job_minutes']} min")
        print(f"MD step: idle {idle['md_ms_per_step']} ms, loaded "
              f"{loaded['md_ms_per_step']} ms "
              f"({loaded['md_ms_per_step'] / idle['md_ms_per_step']:.2f}x)")


if __name__ == '__main__':
    main()
