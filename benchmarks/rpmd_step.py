"""Time of one ring-polymer MD step of C20 (P beads in one batched model
call, normal-mode propagation, PILE-L thermostat), the thesis' ~10 ms
goal for P = 8.

    .venv/bin/python benchmarks/rpmd_step.py [--model RUN_DIR/model.pt] \
        [--beads 8] [--threads 2]

Without --model: a SchNet of the C20 example's size (F = 64, T = 3,
random weights: the time does not depend on them). Prints the median,
min and max of --repeat blocks of 100 steps, in ms per step. Run it on an
otherwise idle machine.
"""
import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / 'examples'
                       / 'c20_rpmd'))


def main():
    from run import c20

    from pyg_schnet.md import RingPolymerMD
    from pyg_schnet.models import SchNet, load_model
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--model', help='a model.pt (default: random '
                        'SchNet, F = 64, T = 3)')
    parser.add_argument('--beads', type=int, default=8)
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument('--repeat', type=int, default=7)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.model:
        model, _ = load_model(args.model)
    else:
        torch.manual_seed(0)
        model = SchNet(hidden_channels=64, num_filters=64,
                       num_interactions=3)
    md = RingPolymerMD(model, c20(), beads=args.beads, temperature=300.0,
                       timestep=0.5, thermostat='pile', tau0=100.0, seed=0,
                       dtype=torch.float32)
    for _ in range(50):
        md.step()
    blocks = []
    for _ in range(args.repeat):
        start = time.perf_counter()
        for _ in range(100):
            md.step()
        blocks.append(1000 * (time.perf_counter() - start) / 100)
    print(f'C20, P = {args.beads}, {args.threads} threads: '
          f'{statistics.median(blocks):.2f} ms per step '
          f'[{min(blocks):.2f}, {max(blocks):.2f}] (thesis: ~10 ms)')


if __name__ == '__main__':
    main()
