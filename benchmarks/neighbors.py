"""Periodic neighbour lists: pyg_schnet's batched cell list against vesin
(the field's fastest), matscipy and ASE, measured in one run, interleaved,
on rattled fcc Cu supercells from 1k to 100k atoms and on batches of small
cells.

    .venv/bin/python benchmarks/neighbors.py [--cutoff 5] [--max-atoms 100000]
        [--device cpu|cuda] [--plot benchmarks/results/neighbors.png]

Every method returns pair indices and image shifts (vesin and matscipy
"ijS"). Prints medians [min, max] per list and the ratio to pyg_schnet's;
checks that every method finds the same number of pairs; plots time against
atoms on log-log axes (linear scaling is a slope of 1).
"""
import argparse
import statistics

import numpy as np
import torch
from ase.build import bulk

from pyg_schnet.graph import periodic_radius_graph

from peers import describe, interleaved, machine, ratio


def ours(atoms_list, cutoff, device):
    pos = torch.tensor(np.concatenate([a.positions for a in atoms_list]),
                       device=device)
    cell = torch.tensor(np.stack([np.asarray(a.cell) for a in atoms_list]),
                        device=device)
    pbc = torch.ones(len(atoms_list), 3, dtype=torch.bool, device=device)
    batch = torch.repeat_interleave(
        torch.arange(len(atoms_list), device=device),
        torch.tensor([len(a) for a in atoms_list], device=device))

    def call():
        edge_index, _ = periodic_radius_graph(pos, cutoff, cell, pbc, batch)
        return edge_index.size(1)
    return call


def vesin_call(atoms_list, cutoff):
    from vesin import NeighborList
    nl = NeighborList(cutoff=cutoff, full_list=True)

    def call():
        return sum(len(nl.compute(points=a.positions, box=a.cell[:],
                                  periodic=True, quantities='ijS')[0])
                   for a in atoms_list)
    return call


def matscipy_call(atoms_list, cutoff):
    from matscipy.neighbours import neighbour_list

    def call():
        return sum(len(neighbour_list('ijS', a, cutoff)[0])
                   for a in atoms_list)
    return call


def ase_call(atoms_list, cutoff):
    from ase.neighborlist import neighbor_list

    def call():
        return sum(len(neighbor_list('ijS', a, cutoff)[0])
                   for a in atoms_list)
    return call


def peers(atoms_list, cutoff, device, with_ase):
    calls = {'pyg_schnet': ours(atoms_list, cutoff, device)}
    for name, make in (('vesin', vesin_call), ('matscipy', matscipy_call)):
        try:
            calls[name] = make(atoms_list, cutoff)
            calls[name]()
        except ImportError:
            calls.pop(name, None)
    if with_ase:
        calls['ASE'] = ase_call(atoms_list, cutoff)
    counts = {name: call() for name, call in calls.items()}
    assert len(set(counts.values())) == 1, f'pair counts differ: {counts}'
    return calls, counts['pyg_schnet']


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--cutoff', type=float, default=5.0)
    parser.add_argument('--max-atoms', type=int, default=100_000)
    parser.add_argument('--repeat', type=int, default=7)
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--plot', default=None)
    args = parser.parse_args()
    device = torch.device(args.device)
    print(f'machine: {machine()}, device {device}, cutoff {args.cutoff} Å')
    unit = bulk('Cu', 'fcc', a=3.61, cubic=True)
    curve = {}
    for k in (7, 9, 11, 14, 18, 23, 29):
        atoms = unit * (k, k, k)
        if len(atoms) > args.max_atoms:
            break
        atoms.rattle(0.05, seed=k)
        calls, pairs = peers([atoms], args.cutoff, device,
                             with_ase=len(atoms) <= 20_000)
        repeat = args.repeat if len(atoms) < 30_000 else 3
        times = interleaved(calls, repeat, warmup=1)
        print(f'\nCu, {len(atoms)} atoms, {pairs} pairs (full list)')
        for name, values in times.items():
            line = f'  {name:<11} {describe(values)}'
            if name != 'pyg_schnet':
                line += f'   pyg_schnet {ratio(times, name, "pyg_schnet")} ' \
                    'faster'
            print(line)
        for name, values in times.items():
            curve.setdefault(name, []).append((len(atoms),
                                               statistics.median(values)))
    # A batch of small cells (a training batch of crystals).
    cells = []
    for seed in range(64):
        a = bulk('Cu', 'fcc', a=3.61, cubic=True) * (2, 2, 2)
        a.rattle(0.05, seed=seed)
        cells.append(a)
    calls, pairs = peers(cells, args.cutoff, device, with_ase=True)
    times = interleaved(calls, args.repeat)
    print(f'\nbatch of 64 Cu cells of 32 atoms, {pairs} pairs')
    for name, values in times.items():
        line = f'  {name:<11} {describe(values)}'
        if name != 'pyg_schnet':
            line += f'   pyg_schnet {ratio(times, name, "pyg_schnet")} faster'
        print(line)
    print('\nlog-log slope of time against atoms (1 = linear):')
    for name, points in curve.items():
        if len(points) > 2:
            x, y = np.log([p[0] for p in points]), np.log([p[1] for p in
                                                          points])
            print(f'  {name:<11} {np.polyfit(x, y, 1)[0]:.2f}')
    if args.plot:
        import matplotlib
        matplotlib.use('Agg')
        import matplotlib.pyplot as plt

        from pyg_schnet.io import atomic_path
        fig, ax = plt.subplots(figsize=(5.5, 4))
        for name, points in curve.items():
            ax.loglog(*zip(*points, strict=True), 'o-', label=name)
        ax.set_xlabel('atoms (fcc Cu, periodic)')
        ax.set_ylabel(f'seconds per neighbour list ({args.cutoff} Å)')
        ax.set_title(machine().split(',')[0])
        ax.legend()
        ax.grid(alpha=0.3, which='both')
        fig.tight_layout()
        with atomic_path(args.plot) as tmp:
            fig.savefig(tmp, dpi=120, format='png')


if __name__ == '__main__':
    main()
