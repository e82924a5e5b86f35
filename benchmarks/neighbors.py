"""Neighbour lists of periodic crystals: pyg_schnet's cell list against
ase.neighborlist.neighbor_list (the reference the tests check against),
in the same run, on rattled fcc Cu supercells of growing size.

    .venv/bin/python benchmarks/neighbors.py [--device cuda] [--cutoff 5]

Prints atoms, edges, seconds of each, and the speed ratio; the edge counts
must agree.
"""
import argparse
import time

import numpy as np
import torch
from ase.build import bulk
from ase.neighborlist import neighbor_list

from pyg_schnet.graph import periodic_radius_graph


def best_of(fn, repeat=3):
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return min(times), out


def ours(pos, cutoff, cell, pbc):
    out = periodic_radius_graph(pos, cutoff, cell, pbc)
    if pos.is_cuda:
        torch.cuda.synchronize()
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--cutoff', type=float, default=5.0)
    parser.add_argument('--sizes', type=int, nargs='+', default=[2, 4, 8, 12])
    args = parser.parse_args()
    device = torch.device(args.device)
    print(f'{"atoms":>7} {"edges":>9} {"pyg_schnet s":>13} {"ASE s":>8} '
          f'{"speed-up":>8}')
    for n in args.sizes:
        atoms = bulk('Cu', 'fcc', a=3.61, cubic=True).repeat(n)
        atoms.rattle(0.05, seed=n)
        pos = torch.tensor(atoms.positions, device=device)
        cell = torch.tensor(np.asarray(atoms.cell), device=device)[None]
        pbc = torch.tensor(atoms.pbc, device=device)[None]

        t_ours, (edge_index, _) = best_of(
            lambda p=pos, c=cell, b=pbc: ours(p, args.cutoff, c, b))
        t_ase, i = best_of(
            lambda a=atoms: neighbor_list('i', a, args.cutoff))
        assert edge_index.size(1) == len(i), 'edge counts differ'
        print(f'{len(atoms):7d} {len(i):9d} {t_ours:13.4f} {t_ase:8.4f} '
              f'{t_ase / t_ours:8.2f}')


if __name__ == '__main__':
    main()
