"""Time of one ring-polymer MD step of C20 (P beads in one batched model
call, normal-mode propagation, PILE-L thermostat), against the thesis'
~10 ms per step (2.5 M steps of 8 beads in ~7 h).

    .venv/bin/python benchmarks/rpmd_step.py [--sizes small thesis] \
        [--threads 1 2] [--beads 8] [--model RUN_DIR/model.pt]

Sizes (random weights: the time does not depend on them):
* ``small``: the C20 example's SchNet, F = 64, T = 3, 50 Gaussians, 5 Å;
* ``thesis``: the thesis' network, F = 128, T = 6, 200 Gaussians, 20 Å
  (all 190 pairs of C20), ssp after both filter layers, no envelope — the
  architecture of the original SchNet code's C20 models
  (``pyg_schnet.models.load_original_schnet``);
* ``--model PATH``: a model.pt of this package, or a folder of the original
  code (args.npy + validation/).

Every (size, threads) engine is stepped in turn, blocks of --steps steps
interleaved round-robin (so machine noise hits all alike); prints the
median [min, max] ms per step, the load average and the machine. Run it on
an otherwise idle machine.
"""
import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / 'examples'
                       / 'c20_rpmd'))
sys.path.insert(0, str(Path(__file__).resolve().parent))

SIZES = {
    'small': dict(hidden_channels=64, num_filters=64, num_interactions=3),
    'thesis': dict(hidden_channels=128, num_filters=128, num_interactions=6,
                   num_gaussians=200, cutoff=20.0, gaussian_width=0.05**0.5,
                   filter_activations=2, envelope='none',
                   ssp_threshold=14.0),
}


def build(size: str):
    from pyg_schnet.models import SchNet, load_model, load_original_schnet
    if size in SIZES:
        torch.manual_seed(0)
        return SchNet(**SIZES[size])
    path = Path(size)
    if path.is_dir():
        return load_original_schnet(path, dtype=torch.float32)[0]
    return load_model(path)[0]


def main():
    from run import c20

    from pyg_schnet.md import RingPolymerMD

    from peers import machine
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--sizes', nargs='+', default=['small', 'thesis'],
                        help='small, thesis (default: both)')
    parser.add_argument('--model', help='also time this model.pt or '
                        'original model folder')
    parser.add_argument('--beads', type=int, default=8)
    parser.add_argument('--threads', type=int, nargs='+', default=[1, 2])
    parser.add_argument('--repeat', type=int, default=7,
                        help='blocks per engine (default: 7)')
    parser.add_argument('--steps', type=int, default=50,
                        help='steps per block (default: 50)')
    parser.add_argument('--dtypes', nargs='+', default=['float32'],
                        choices=['float32', 'float64'])
    parser.add_argument('--schnetpack', metavar='PYTHON',
                        help="also SchNetPack 2.1.1's RPMD engine (float64, "
                        'as its calculator computes) at the thesis size, '
                        'run by this interpreter of its own venv (see '
                        'benchmarks/schnetpack_rpmd.py)')
    parser.add_argument('--profile', action='store_true',
                        help='then print where the time goes (torch '
                        'profiler, top operators by self time)')
    args = parser.parse_args()
    sizes = list(args.sizes) + ([args.model] if args.model else [])
    engines = {}
    for size in sizes:
        model = build(size)
        for threads in args.threads:
            for dtype in args.dtypes:
                torch.set_num_threads(threads)
                md = RingPolymerMD(model, c20(), beads=args.beads,
                                   temperature=300.0, timestep=0.5,
                                   thermostat='pile', tau0=100.0, seed=0,
                                   dtype=getattr(torch, dtype))
                for _ in range(20):
                    md.step()
                engines[('pyg_schnet', size, threads, dtype)] = md
    peers = {}
    if args.schnetpack:
        import subprocess
        script = Path(__file__).resolve().parent / 'schnetpack_rpmd.py'
        for threads in args.threads:
            proc = subprocess.Popen(
                [args.schnetpack, str(script), '--size', 'thesis',
                 '--beads', str(args.beads), '--threads', str(threads)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL, text=True)
            if proc.stdout.readline().strip() != 'ready':
                raise SystemExit('the SchNetPack engine did not start')
            peers[('SchNetPack 2.1.1', 'thesis', threads, 'float64')] = proc
    print(f'{machine()}; load average {os.getloadavg()[0]:.2f} at the '
          f'start; C20, P = {args.beads}')
    keys = list(engines) + list(peers)
    times = {key: [] for key in keys}
    for r in range(args.repeat):
        for key in keys[r % len(keys):] + keys[:r % len(keys)]:
            if key in peers:
                proc = peers[key]
                proc.stdin.write(f'block {args.steps}\n')
                proc.stdin.flush()
                times[key].append(float(proc.stdout.readline()))
                continue
            torch.set_num_threads(key[2])
            md = engines[key]
            start = time.perf_counter()
            for _ in range(args.steps):
                md.step()
            times[key].append(1000 * (time.perf_counter() - start) /
                              args.steps)
    for proc in peers.values():
        proc.stdin.close()
        proc.wait()
    ours = {key[1:]: statistics.median(v) for key, v in times.items()
            if key[0] == 'pyg_schnet'}
    for (engine, size, threads, dtype), values in times.items():
        name = size if size in SIZES else Path(size).name
        line = (f'{engine:>16} {name:>8} {dtype}, {threads} '
                f'thread{"s" if threads > 1 else " "}: '
                f'{statistics.median(values):7.2f} ms per step '
                f'[{min(values):.2f}, {max(values):.2f}]')
        same = ours.get((size, threads, dtype))
        if engine != 'pyg_schnet' and same:
            line += f'; pyg_schnet {statistics.median(values) / same:.1f}x ' \
                'faster'
        print(line)
    print(f'thesis: ~10 ms per step; load average '
          f'{os.getloadavg()[0]:.2f} at the end')
    if args.profile:
        profile(engines, args.steps)


def profile(engines: dict, steps: int) -> None:
    r"""Where a step's time goes, per engine: torch.profiler over
    :obj:`steps` steps, the operators with the largest self CPU time."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile
    for key, md in engines.items():
        torch.set_num_threads(key[2])
        with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
            for _ in range(steps):
                md.step()
        events = prof.key_averages()
        total = sum(e.self_cpu_time_total for e in events)
        print(f'\nprofile of {" ".join(map(str, key))}: '
              f'{total / steps / 1000:.2f} ms of operators per step, '
              f'{sum(e.count for e in events) // steps} operator calls')
        for e in sorted(events, key=lambda e: -e.self_cpu_time_total)[:12]:
            print(f'  {e.key:<40} {100 * e.self_cpu_time_total / total:5.1f} '
                  f'% {e.count // steps:5d} calls')


if __name__ == '__main__':
    main()
