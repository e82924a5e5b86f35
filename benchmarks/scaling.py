"""Time and peak memory of energy + forces of periodic fcc Cu crystals from
~1,000 to ~100,000 atoms, each size in a fresh process: the log-log slope
of time against edges, the time per edge, and the peak memory.

    .venv/bin/python benchmarks/scaling.py [--sizes 1000 4000 16000 32000
        62500 100000] [--threads 1] [--reference-up-to 16000]

SchNet F = 128, T = 6, 50 Gaussians, 5 Å (benchmarks/peers.py), float32,
rattled crystals (peers.crystal). Per size and allocator (glibc's default
and pyg_schnet.allocator.tune_allocator): the graph is built (not timed),
then two energy + forces calls; the second is timed, the peak is the
process's maximum resident set size minus its size just before the first
call. ``pyg_schnet`` is the default path (the fused CFConv, which above
2^24 pair-filter elements recomputes filters tile by tile);
``reference`` is ``set_fused(False)``, up to --reference-up-to atoms.
Results are appended to benchmarks/results/scaling.jsonl.
"""
import argparse
import json
import math
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

CHILD = r'''
import json, resource, sys, time, torch
sys.path.insert(0, {here!r})
torch.set_num_threads({threads})
from peers import SIZE, crystal
from pyg_schnet.allocator import tune_allocator
from pyg_schnet.data import from_ase
from pyg_schnet.graph import PeriodicRadiusGraph
from pyg_schnet.models import SchNet
if {tuned!r}:
    tune_allocator()
atoms = crystal('Cu', {size})
data = PeriodicRadiusGraph(5.0)(from_ase(atoms))
torch.manual_seed(0)
model = SchNet(**SIZE).eval().set_fused({fused!r})
rss = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
import psutil
before = psutil.Process().memory_info().rss / 1e9
model(data, forces=True)
start = time.perf_counter()
model(data, forces=True)
seconds = time.perf_counter() - start
print(json.dumps(dict(atoms=len(atoms), edges=data.edge_index.size(1),
                      seconds=seconds, peak_gb=rss() - before)))
'''


def measure(size: int, tuned: bool, fused: bool, threads: int) -> dict:
    code = CHILD.format(here=str(HERE), size=size, tuned=tuned, fused=fused,
                        threads=threads)
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    out = subprocess.run([sys.executable, '-c', code], capture_output=True,
                         text=True, env=env)
    if out.returncode != 0:
        return dict(error=out.stderr.strip().splitlines()[-1][:200])
    return json.loads(out.stdout.strip().splitlines()[-1])


def slope(rows):
    xs = [math.log(r['edges']) for r in rows]
    ys = [math.log(r['seconds']) for r in rows]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / \
        sum((x - mx) ** 2 for x in xs)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--sizes', type=int, nargs='+',
                        default=[1000, 4000, 16000, 32000, 62500, 100000])
    parser.add_argument('--threads', type=int, default=1)
    parser.add_argument('--reference-up-to', type=int, default=16000)
    args = parser.parse_args()
    sys.path.insert(0, str(HERE))
    from peers import machine
    print(f'machine: {machine()}, {args.threads} torch thread(s); load '
          f'average {os.getloadavg()[0]:.2f} at the start')
    results = HERE / 'results' / 'scaling.jsonl'
    results.parent.mkdir(exist_ok=True)
    table = {}
    for size in args.sizes:
        for label, tuned, fused in (('pyg_schnet, tuned allocator', True,
                                     True),
                                    ('pyg_schnet, default allocator', False,
                                     True),
                                    ('reference, tuned allocator', True,
                                     False)):
            if not fused and size > args.reference_up_to:
                continue
            row = measure(size, tuned, fused, args.threads)
            row.update(label=label, threads=args.threads)
            with open(results, 'a') as f:
                f.write(json.dumps(row) + '\n')
            table.setdefault(label, []).append(row)
            if 'error' in row:
                print(f'  {label:<30} {size:>7} atoms: failed: '
                      f'{row["error"]}', flush=True)
                continue
            print(f'  {label:<30} {row["atoms"]:>7} atoms '
                  f'{row["edges"]:>9} edges {row["seconds"]:8.2f} s '
                  f'{row["seconds"] / row["edges"] * 1e6:6.2f} µs/edge '
                  f'peak {row["peak_gb"]:6.2f} GB', flush=True)
    for label, rows in table.items():
        rows = [r for r in rows if 'error' not in r]
        if len(rows) < 2:
            continue
        per_edge = [r['seconds'] / r['edges'] * 1e6 for r in rows]
        print(f'{label}: log-log slope {slope(rows):.3f}; µs per edge '
              f'{min(per_edge):.2f} to {max(per_edge):.2f} '
              f'(max/min {max(per_edge) / min(per_edge):.2f})')
    print(f'load average {os.getloadavg()[0]:.2f} at the end')


if __name__ == '__main__':
    main()
