"""Speed of SchNet energy + forces against its peers, measured in one run,
interleaved call by call: one molecule, a batch of QM9 molecules, periodic
crystals, and a training step.

    .venv/bin/python benchmarks/speed.py [--repeat 20] [--threads N]
        [--tables molecule batch crystal train] [--device cpu|cuda]

Every model has F = 128, T = 6, 50 Gaussians and a 5 Å cutoff (see
benchmarks/peers.py). Prints medians [min, max] and the ratio of each
peer's median to pyg_schnet's (> 1: pyg_schnet is faster). pyg_schnet runs
exact (no approximation): each pair's filter computed once for both
directions.
"""
import argparse

import torch
from torch_geometric.loader import DataLoader

from pyg_schnet.data import QM9, from_ase
from pyg_schnet.graph import PeriodicRadiusGraph
from pyg_schnet.models import SchNet, edge_vectors
from pyg_schnet.train.config import default_data_root

from peers import (
    SIZE,
    crystal,
    describe,
    ethanol,
    fixed_periodic_graph,
    interleaved,
    machine,
    molecule_graph,
    pyg_schnet_model,
    ratio,
    torchmd_gn_model,
)


def ours_call(model, data):
    def call():
        model(data, forces=True)
    return call


def pyg_call(model, z, pos, batch):
    def call():
        p = pos.clone().requires_grad_(True)
        energy = model(z, p, batch)
        torch.autograd.grad(energy.sum(), p)
    return call


def tmd_call(model, z, pos, batch, box=None):
    def call():
        model(z, pos, batch, box=box)
    return call


def report(title, times, unit_per=None, per_label=''):
    print(f'\n{title}')
    for name, values in times.items():
        line = f'  {name:<14} {describe(values)}'
        if unit_per:
            line += f'   {describe(values, 1e6, "µs", unit_per)}{per_label}'
        if name != 'pyg_schnet':
            line += f'   pyg_schnet {ratio(times, name, "pyg_schnet")} ' \
                'faster'
        print(line)
    if 'pyg_schnet compiled' in times:
        for name in [n for n in times if n not in (
                'pyg_schnet', 'pyg_schnet compiled')]:
            print(f'  compiled pyg_schnet is '
                  f'{ratio(times, name, "pyg_schnet compiled")} faster than '
                  f'{name}')


def compiled_call(model, data):
    r"""The graph built as :meth:`AtomisticModel.forward` does, then a
    :func:`torch.compile`-d energy (dynamic shapes) and autograd forces."""
    from pyg_schnet.graph import canonical_mask, radius_graph
    energy = torch.compile(model.energy, dynamic=True, fullgraph=True)
    batch = torch.zeros(data.num_nodes, dtype=torch.long,
                        device=data.pos.device)

    def call():
        edge_index = radius_graph(data.pos, model.cutoff)
        edge_index = edge_index[:, canonical_mask(edge_index)]
        pos = data.pos.clone().requires_grad_(True)
        e = energy(data.z, pos, edge_index, batch, 1, None, None, True)
        torch.autograd.grad(e.sum(), pos)
    return call


def molecule_table(device, repeat, compiled=False):
    atoms = ethanol()
    data = from_ase(atoms).to(device)
    ours = SchNet(**SIZE).to(device).eval()
    pyg = pyg_schnet_model(molecule_graph()).to(device).eval()
    batch = torch.zeros(len(atoms), dtype=torch.long, device=device)
    calls = {'pyg_schnet': ours_call(ours, data),
             'PyG SchNet': pyg_call(pyg, data.z, data.pos, batch)}
    if compiled:
        calls['pyg_schnet compiled'] = compiled_call(ours, data)
    tmd = torchmd_gn_model()
    if tmd is not None:
        calls['TorchMD-GN'] = tmd_call(tmd.to(device).eval(), data.z,
                                       data.pos, batch)
    report('energy + forces, one ethanol (9 atoms), graph included',
           interleaved(calls, repeat * 10))


def qm9_batches(size, count, device):
    r""":obj:`count` batches of :obj:`size` QM9 molecules drawn at random
    (seed 0)."""
    dataset = QM9(f'{default_data_root()}/qm9')
    pick = torch.randperm(len(dataset), generator=torch.Generator()
                          .manual_seed(0))[:size * count]
    return [b.to(device) for b in DataLoader(dataset[pick],
                                             batch_size=size)]


def batch_table(device, repeat):
    batch = qm9_batches(100, 1, device)[0]
    ours = SchNet(**SIZE).to(device).eval()
    pyg = pyg_schnet_model(molecule_graph()).to(device).eval()
    calls = {'pyg_schnet': ours_call(ours, batch),
             'PyG SchNet': pyg_call(pyg, batch.z, batch.pos, batch.batch)}
    tmd = torchmd_gn_model()
    if tmd is not None:
        calls['TorchMD-GN'] = tmd_call(tmd.to(device).eval(), batch.z,
                                       batch.pos, batch.batch)
    edges = PeriodicRadiusGraph(5.0)(batch.clone()).edge_index.size(1)
    report(f'energy + forces, batch of 100 QM9 molecules ({edges} edges), '
           f'graph included', interleaved(calls, repeat), edges, ' per edge')


def crystal_table(device, repeat, sizes):
    for kind in ('Cu', 'Si'):
        for size in sizes:
            atoms = crystal(kind, size)
            data = PeriodicRadiusGraph(5.0)(from_ase(atoms)).to(device)
            edges = data.edge_index.size(1)
            ours = SchNet(**SIZE).to(device).eval()
            cell = data.cell

            def vectors(pos, data=data, cell=cell):
                batch = torch.zeros(pos.size(0), dtype=torch.long,
                                    device=pos.device)
                return edge_vectors(pos, data.edge_index, batch, cell,
                                    data.cell_offsets)
            pyg = pyg_schnet_model(fixed_periodic_graph(
                data.edge_index, vectors)).to(device).eval()
            batch = torch.zeros(len(atoms), dtype=torch.long, device=device)
            calls = {'pyg_schnet': ours_call(ours, data),
                     'PyG SchNet': pyg_call(pyg, data.z, data.pos, batch)}
            tmd = torchmd_gn_model(box=data.cell[0].cpu())
            if tmd is not None:
                calls['TorchMD-GN'] = tmd_call(
                    tmd.to(device).eval(), data.z, data.pos, batch,
                    data.cell[0])
            report(f'energy + forces, {kind} crystal, {len(atoms)} atoms, '
                   f'{edges} edges (prebuilt graph; TorchMD-GN builds '
                   f'its own)', interleaved(calls, repeat, warmup=1), edges,
                   ' per edge')


def train_table(device, repeat):
    batches = qm9_batches(32, 8, device)
    torch.manual_seed(0)
    ours = SchNet(**SIZE).to(device).train()
    pyg = pyg_schnet_model(molecule_graph()).to(device).train()
    opt_ours = torch.optim.Adam(ours.parameters(), 1e-5)
    opt_pyg = torch.optim.Adam(pyg.parameters(), 1e-5)
    state = {'k': 0}

    def loss(energy, forces, b):
        return 0.01 * (energy - b.U0.to(energy.dtype) / 1e3).pow(2).mean() + \
            forces.pow(2).sum(-1).mean()

    def step_ours():
        b = batches[state['k'] % len(batches)]
        energy, forces = ours(b, forces=True)
        opt_ours.zero_grad()
        loss(energy, forces, b).backward()
        opt_ours.step()

    def step_pyg():
        b = batches[state['k'] % len(batches)]
        state['k'] += 1
        pos = b.pos.clone().requires_grad_(True)
        energy = pyg(b.z, pos, b.batch).view(-1)
        forces = -torch.autograd.grad(energy.sum(), pos,
                                      create_graph=True)[0]
        opt_pyg.zero_grad()
        loss(energy, forces, b).backward()
        opt_pyg.step()
    times = interleaved({'pyg_schnet': step_ours, 'PyG SchNet': step_pyg},
                        repeat)
    report('training step (energy + force loss, backward, Adam), QM9 '
           'batches of 32', times, 32, ' per molecule')
    for name, values in times.items():
        import statistics
        print(f'  {name}: {32 / statistics.median(values):.0f} molecules/s')


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--tables', nargs='+', default=[
        'molecule', 'batch', 'crystal', 'train'])
    parser.add_argument('--repeat', type=int, default=20)
    parser.add_argument('--threads', type=int, default=None)
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--compile', action='store_true',
                        help='add torch.compile-d pyg_schnet to the molecule '
                        'table (~30 s to compile)')
    parser.add_argument('--sizes', type=int, nargs='+',
                        default=[1000, 2000, 4000, 8000])
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    from pyg_schnet.allocator import tune_allocator
    tune_allocator()
    device = torch.device(args.device)
    print(f'machine: {machine()}, device {device}')
    if 'molecule' in args.tables:
        molecule_table(device, args.repeat, args.compile)
    if 'batch' in args.tables:
        batch_table(device, args.repeat)
    if 'crystal' in args.tables:
        crystal_table(device, max(3, args.repeat // 4), args.sizes)
    if 'train' in args.tables:
        train_table(device, args.repeat)


if __name__ == '__main__':
    main()
