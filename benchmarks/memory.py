"""Peak memory of one energy + forces call, pyg_schnet against PyG's SchNet
on the same graph, each in a fresh process (peak resident set size minus
that of the process just before the call).

    .venv/bin/python benchmarks/memory.py [--cases molecule2000 cu8000]

Cases: ``molecule2000``, a 2,187-atom water cluster (no periodicity, liquid
density, 5 Å cutoff: 45 neighbours per atom); ``cu8000``, a periodic fcc
Cu crystal of 8,788 atoms (43 neighbours per atom). Each with glibc's
default allocator and with :func:`pyg_schnet.allocator.tune_allocator`
(faster, but a fragmented heap holds more memory).
"""
import argparse
import json
import subprocess
import sys
from pathlib import Path

CHILD = r'''
import json, resource, sys, torch
sys.path.insert(0, {here!r})
from peers import (SIZE, crystal, fixed_periodic_graph, molecule_graph,
                   pyg_schnet_model, water_cluster)
from pyg_schnet.allocator import tune_allocator
from pyg_schnet.data import from_ase
from pyg_schnet.graph import PeriodicRadiusGraph
from pyg_schnet.models import SchNet, edge_vectors
if {tuned!r}:
    tune_allocator()
case, who = {case!r}, {who!r}
atoms = water_cluster(2000) if case == 'molecule2000' else \
    crystal('Cu', 8000)
data = PeriodicRadiusGraph(5.0)(from_ase(atoms))
edges = data.edge_index.size(1)
torch.manual_seed(0)
if who == 'pyg_schnet':
    model = SchNet(**SIZE).eval()
    run = lambda: model(data, forces=True)
else:
    batch = torch.zeros(len(atoms), dtype=torch.long)
    if case == 'molecule2000':
        graph = molecule_graph()
    else:
        graph = fixed_periodic_graph(data.edge_index, lambda p: edge_vectors(
            p, data.edge_index, batch, data.cell, data.cell_offsets))
    model = pyg_schnet_model(graph).eval()
    def run():
        p = data.pos.clone().requires_grad_(True)
        e = model(data.z, p, batch)
        torch.autograd.grad(e.sum(), p)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
run()
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps(dict(atoms=len(atoms), edges=edges,
                      peak_gb=(after - before) / 1e6)))
'''


def measure(case: str, who: str, tuned: bool) -> dict:
    here = str(Path(__file__).parent)
    proc = subprocess.run([sys.executable, '-c', CHILD.format(
        here=here, case=case, who=who, tuned=tuned)], capture_output=True,
        text=True)
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-2000:])
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--cases', nargs='+',
                        default=['molecule2000', 'cu8000'])
    args = parser.parse_args()
    for case in args.cases:
        for tuned in (False, True):
            rows = {who: measure(case, who, tuned)
                    for who in ('pyg_schnet', 'PyG SchNet')}
            first = rows['pyg_schnet']
            allocator = 'tuned allocator' if tuned else 'default allocator'
            print(f"\n{case}: {first['atoms']} atoms, {first['edges']} "
                  f'edges, energy + forces, {allocator}: peak memory above '
                  f'the loaded process')
            for who, row in rows.items():
                per_edge = row['peak_gb'] * 1e9 / row['edges']
                print(f"  {who:<12} {row['peak_gb']:.2f} GB ({per_edge:.0f} "
                      f'bytes per edge)')
            print(f"  PyG / pyg_schnet: "
                  f"{rows['PyG SchNet']['peak_gb'] / first['peak_gb']:.2f}x")


if __name__ == '__main__':
    main()
