"""Speed of SchNet energy + forces against its peers, measured in one run,
interleaved call by call: one molecule, C20 and the RPMD batch of 8 C20,
a batch of QM9 molecules, periodic crystals, and a training step.

    .venv/bin/python benchmarks/speed.py [--repeat 20] [--threads 1 2]
        [--tables molecule batch crystal train] [--device cpu|cuda]

Every model has F = 128, T = 6, 50 Gaussians and a 5 Å cutoff (see
benchmarks/peers.py). Each row: median [min, max] of the call; ratios are
the peer's median over pyg_schnet's (> 1: pyg_schnet is faster), with the
range of the per-round ratios. Rows:

* ``pyg_schnet``: the default path (outside training: the fused C++ CFConv
  operator where it is built, each pair's filter once for both directions);
* ``pyg_schnet reference``: the same model with ``set_fused(False)``;
* ``PyG SchNet``, ``TorchMD-GN`` (TorchMD-Net's graph-network, when
  torchmd-net is installed): the peers, same sizes;
* ``GEMMs alone``: the matrix products pyg_schnet's exact algorithm needs
  for energy + forces, at their shapes (per interaction: in2f, both filter
  layers on the P pairs, f2out, dense; forward and the backward's input
  gradients; the readout), timed in the same rounds: the floor that
  ``call / GEMMs`` is measured against.
"""
import argparse
import copy
import os
import sys
from pathlib import Path

import torch
from torch_geometric.data import Batch
from torch_geometric.loader import DataLoader

from pyg_schnet.data import QM9, from_ase
from pyg_schnet.graph import PeriodicRadiusGraph
from pyg_schnet.models import SchNet, edge_vectors
from pyg_schnet.train.config import default_data_root

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / 'examples'
                       / 'c20_rpmd'))
from run import c20  # noqa: E402

from peers import (  # noqa: E402
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
        if name not in ('pyg_schnet', 'GEMMs alone'):
            line += f'   pyg_schnet {ratio(times, name, "pyg_schnet")} ' \
                'faster'
        print(line)
    if 'pyg_schnet compiled' in times:
        for name in [n for n in times if n not in (
                'pyg_schnet', 'pyg_schnet compiled', 'GEMMs alone')]:
            print(f'  compiled pyg_schnet is '
                  f'{ratio(times, name, "pyg_schnet compiled")} faster than '
                  f'{name}')


def compiled_call(model, data):
    r"""The graph built as :meth:`AtomisticModel.forward` does, then a
    :func:`torch.compile`-d energy (dynamic shapes, the reference path, as
    ``SchNetCalculator(compile=True)`` uses) and autograd forces."""
    from pyg_schnet.graph import canonical_mask, radius_graph
    model = copy.deepcopy(model).set_fused(False)
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


def gemm_call(model, atoms, pairs, device):
    r"""The GEMMs of energy + forces of :obj:`model` on :obj:`atoms` atoms
    and :obj:`pairs` unordered pairs, at their shapes, nothing else."""
    H, F, K = model.hidden_channels, model.num_filters, model.num_gaussians
    T = model.num_interactions
    gen = torch.Generator(device='cpu').manual_seed(0)

    def rand(*shape):
        return torch.rand(*shape, generator=gen).to(device)
    shapes = []
    for _ in range(T):
        shapes += [((atoms, H), (H, F)), ((pairs, K), (K, F)),
                   ((pairs, F), (F, F)), ((atoms, F), (F, H)),
                   ((atoms, H), (H, H))]
    shapes += [((atoms, H), (H, H // 2)), ((atoms, H // 2), (H // 2, 1))]
    # backward: the input gradient of each product, same cost
    shapes += [((a[0], b[1]), (b[1], a[1])) for a, b in shapes]
    operands = [(rand(*a), rand(*b)) for a, b in shapes]

    def call():
        for a, b in operands:
            torch.mm(a, b)
    return call


def case(title, model, data, pyg_inputs, pyg_graph, tmd_inputs, device,
         repeat, compiled=False, per_edge=False, warmup=2):
    r"""One table: pyg_schnet (default and reference path), the peers and
    the GEMM floor on :obj:`data`, interleaved."""
    ours = model.to(device).eval()
    reference = copy.deepcopy(ours).set_fused(False)
    pairs = PeriodicRadiusGraph(model.cutoff)(data.clone()).edge_index \
        .size(1)
    calls = {'pyg_schnet': ours_call(ours, data),
             'pyg_schnet reference': ours_call(reference, data)}
    if compiled:
        calls['pyg_schnet compiled'] = compiled_call(ours, data)
    calls['PyG SchNet'] = pyg_call(
        pyg_schnet_model(pyg_graph).to(device).eval(), *pyg_inputs)
    tmd = torchmd_gn_model(box=tmd_inputs[-1] if len(tmd_inputs) == 4
                           else None)
    if tmd is not None:
        calls['TorchMD-GN'] = tmd_call(tmd.to(device).eval(), *tmd_inputs)
    calls['GEMMs alone'] = gemm_call(ours, data.num_nodes, pairs // 2,
                                     device)
    times = interleaved(calls, repeat, warmup=warmup)
    report(f'{title} ({data.num_nodes} atoms, {pairs} edges = {pairs // 2} '
           f'pairs)', times, pairs if per_edge else None,
           ' per edge' if per_edge else '')
    print(f'  call / GEMMs: pyg_schnet '
          f'{ratio(times, "pyg_schnet", "GEMMs alone")}, reference '
          f'{ratio(times, "pyg_schnet reference", "GEMMs alone")}, '
          f'PyG SchNet {ratio(times, "PyG SchNet", "GEMMs alone")}')
    return times


def molecule_table(device, repeat, compiled=False):
    c20_atoms = c20()
    for title, structures, reps in (
            ('energy + forces, one ethanol, graph included', [ethanol()],
             repeat * 10),
            ('energy + forces, one C20, graph included', [c20_atoms],
             repeat * 5),
            ('energy + forces, 8 C20 in one batch (the RPMD P = 8 call), '
             'graph included', [c20_atoms] * 8, repeat * 2)):
        data = Batch.from_data_list([from_ase(a) for a in structures]) \
            .to(device)
        torch.manual_seed(0)
        case(title, SchNet(**SIZE), data, (data.z, data.pos, data.batch),
             molecule_graph(), (data.z, data.pos, data.batch), device, reps,
             compiled and len(structures) == 1)


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
    torch.manual_seed(0)
    case('energy + forces, batch of 100 QM9 molecules, graph included',
         SchNet(**SIZE), batch, (batch.z, batch.pos, batch.batch),
         molecule_graph(), (batch.z, batch.pos, batch.batch), device,
         repeat, per_edge=True)


def crystal_table(device, repeat, sizes):
    for kind in ('Cu', 'Si'):
        for size in sizes:
            atoms = crystal(kind, size)
            data = PeriodicRadiusGraph(5.0)(from_ase(atoms)).to(device)
            cell = data.cell

            def vectors(pos, data=data, cell=cell):
                batch = torch.zeros(pos.size(0), dtype=torch.long,
                                    device=pos.device)
                return edge_vectors(pos, data.edge_index, batch, cell,
                                    data.cell_offsets)
            batch = torch.zeros(len(atoms), dtype=torch.long, device=device)
            torch.manual_seed(0)
            case(f'energy + forces, {kind} crystal, prebuilt graph '
                 f'(TorchMD-GN builds its own)', SchNet(**SIZE), data,
                 (data.z, data.pos, batch),
                 fixed_periodic_graph(data.edge_index, vectors),
                 (data.z, data.pos, batch, data.cell[0]), device, repeat,
                 per_edge=True, warmup=1)


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
    parser.add_argument('--threads', type=int, nargs='+', default=[1, 2],
                        help='run every table with each (default: 1 2)')
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--compile', action='store_true',
                        help='add torch.compile-d pyg_schnet to the molecule '
                        'table (~30 s to compile)')
    parser.add_argument('--sizes', type=int, nargs='+',
                        default=[1000, 2000, 4000, 8000])
    args = parser.parse_args()
    from pyg_schnet.allocator import tune_allocator
    from pyg_schnet.nn.fused import fused_available, fused_unavailable_reason
    tune_allocator()
    device = torch.device(args.device)
    print(f'machine: {machine()}, device {device}; load average '
          f'{os.getloadavg()[0]:.2f} at the start; fused operator: '
          f'{fused_available() or fused_unavailable_reason()}')
    for threads in args.threads:
        torch.set_num_threads(threads)
        print(f'\n=== {threads} torch thread(s) ===')
        if 'molecule' in args.tables:
            molecule_table(device, args.repeat, args.compile)
        if 'batch' in args.tables:
            batch_table(device, args.repeat)
        if 'crystal' in args.tables:
            crystal_table(device, max(3, args.repeat // 4), args.sizes)
        if 'train' in args.tables:
            train_table(device, args.repeat)
    print(f'\nload average {os.getloadavg()[0]:.2f} at the end')


if __name__ == '__main__':
    main()
