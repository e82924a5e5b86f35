"""How many torch threads help: energy + forces (and a training step) of
systems from one molecule to a 4,000-atom crystal, with 1 and with 2
threads, interleaved call by call in one process (torch.set_num_threads
switches between calls). The measurements behind pyg_schnet.threads.

    .venv/bin/python benchmarks/threads.py [--repeat 15] [--burners 0]

--burners K runs K busy-looping processes meanwhile (a loaded machine: a
browser, other jobs). Prints medians [min, max] in ms and the ratio
t(1 thread) / t(2 threads) (> 1: two threads are faster), with the load
average and the machine. SchNet F = 128, T = 6, 50 Gaussians, 5 Å.
"""
import argparse
import multiprocessing
import os
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))


def _burn() -> None:  # pragma: no cover - a load generator
    while True:
        pass


def cases():
    from ase.build import bulk, molecule
    from torch_geometric.data import Batch

    from pyg_schnet.data import from_ase, from_smiles
    from pyg_schnet.graph import build_graph

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent /
                           'examples' / 'c20_rpmd'))
    from run import c20
    out = {'ethanol': [from_ase(molecule('CH3CH2OH'))],
           'C20 x 8 (RPMD P = 8)': [from_ase(c20())] * 8,
           'QM9-like batch of 32': [from_smiles(s, seed=0) for s in
                                    ['CCO', 'CC(=O)O', 'c1ccccc1', 'CCN',
                                     'CC(C)O', 'OCC=O', 'CC#N', 'NC=O'] * 4],
           'Cu fcc 864 atoms': [from_ase(bulk('Cu', 'fcc', a=3.61,
                                              cubic=True) * (6, 6, 6))],
           'Cu fcc 4,000 atoms': [from_ase(bulk('Cu', 'fcc', a=3.61,
                                                cubic=True) * (10, 10, 10))]}
    batches = {}
    for name, structures in out.items():
        batch = Batch.from_data_list(structures)
        edge_index, _ = build_graph(batch.pos, 5.0, batch.batch,
                                    batch.cell, batch.pbc, batch.num_graphs)
        batches[name] = (batch, edge_index.size(1) // 2)
    return batches


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--repeat', type=int, default=15)
    parser.add_argument('--burners', type=int, default=0)
    args = parser.parse_args()
    from pyg_schnet.models import SchNet

    from peers import SIZE, describe, machine
    burners = [multiprocessing.Process(target=_burn, daemon=True)
               for _ in range(args.burners)]
    for p in burners:
        p.start()
    try:
        torch.manual_seed(0)
        model = SchNet(**SIZE).eval()
        trainable = SchNet(**SIZE).train()
        print(f'{machine()}; {args.burners} burner processes; load average '
              f'{os.getloadavg()[0]:.2f} at the start')
        for name, (batch, pairs) in cases().items():
            calls = {'E+F': lambda b=batch: model(b, forces=True)}
            if name.startswith('QM9'):
                def step(b=batch):
                    trainable.zero_grad()
                    trainable(b).sum().backward()
                calls = {'training step': step}
            for what, call in calls.items():
                times = {1: [], 2: []}
                for threads in (1, 2, 1, 2):  # warm-up
                    torch.set_num_threads(threads)
                    call()
                for r in range(args.repeat):
                    for threads in ((1, 2) if r % 2 == 0 else (2, 1)):
                        torch.set_num_threads(threads)
                        start = time.perf_counter()
                        call()
                        times[threads].append(time.perf_counter() - start)
                ratio = statistics.median(times[1]) / \
                    statistics.median(times[2])
                print(f'{name} ({pairs:,} pairs), {what}: 1 thread '
                      f'{describe(times[1])}, 2 threads '
                      f'{describe(times[2])}; 1/2 = {ratio:.2f}')
        print(f'load average {os.getloadavg()[0]:.2f} at the end')
    finally:
        for p in burners:
            p.terminate()


if __name__ == '__main__':
    main()
