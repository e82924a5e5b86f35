"""Training and inference throughput (energy + forces) on QM9 batches:
pyg_schnet's SchNet against PyG's own SchNet, same sizes, same batches,
measured in the same run.

    .venv/bin/python benchmarks/throughput.py [--device cuda] [--batches 20]

Both models: H = F = 128, T = 6, 50 Gaussians, cutoff 5 Å, forces by
autograd (with create_graph=True while training). PyG's model gets the same
torch_cluster radius graph (no neighbour cap) so the comparison is of the
networks, not of graph building. Prints molecules/s and the ratio.
"""
import argparse
import time

import torch
import torch_cluster
from torch_geometric.loader import DataLoader
from torch_geometric.nn.models import SchNet as PyGSchNet

from pyg_schnet.data import QM9
from pyg_schnet.models import SchNet
from pyg_schnet.train.config import default_data_root


def pyg_model(cutoff: float) -> PyGSchNet:
    def graph(pos, batch):
        edge_index = torch_cluster.radius_graph(pos, r=cutoff, batch=batch,
                                                max_num_neighbors=1000)
        row, col = edge_index
        return edge_index, (pos[row] - pos[col]).norm(dim=-1)

    return PyGSchNet(hidden_channels=128, num_filters=128,
                     num_interactions=6, num_gaussians=50, cutoff=cutoff,
                     interaction_graph=graph)


def energy_and_forces(name, model, batch, training):
    pos = batch.pos.clone().requires_grad_(True)
    if name == 'pyg_schnet':
        batch = batch.clone()
        batch.pos = pos
        energy = model(batch)
    else:
        energy = model(batch.z, pos, batch.batch).view(-1)
    forces = -torch.autograd.grad(energy.sum(), pos,
                                  create_graph=training)[0]
    return energy, forces


def measure(name, model, batches, training, device):
    model.train(training)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    count = 0
    for k, batch in enumerate(batches):
        if k == 2:  # warm-up
            if device.type == 'cuda':
                torch.cuda.synchronize()
            start, count = time.perf_counter(), 0
        energy, forces = energy_and_forces(name, model, batch, training)
        if training:
            loss = 0.01 * energy.pow(2).mean() + forces.pow(2).sum(1).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        count += batch.num_graphs
    if device.type == 'cuda':
        torch.cuda.synchronize()
    return count / (time.perf_counter() - start)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available()
                        else 'cpu')
    parser.add_argument('--batch-size', type=int, default=32)
    parser.add_argument('--batches', type=int, default=20)
    parser.add_argument('--root', default=default_data_root())
    args = parser.parse_args()
    device = torch.device(args.device)
    torch.manual_seed(0)
    dataset = QM9(f'{args.root}/qm9')
    loader = DataLoader(dataset[:args.batch_size * (args.batches + 2)],
                        batch_size=args.batch_size)
    batches = [b.to(device) for b in loader]
    models = {'pyg_schnet': SchNet(cutoff=5.0).to(device),
              'torch_geometric': pyg_model(5.0).to(device)}
    print(f'device {device}, batch {args.batch_size} QM9 molecules, '
          f'{args.batches} timed batches')
    for training in (True, False):
        rates = {name: measure(name, model, batches, training, device)
                 for name, model in models.items()}
        what = 'training (E+F)' if training else 'inference (E+F)'
        ratio = rates['pyg_schnet'] / rates['torch_geometric']
        print(f"{what:16s} pyg_schnet {rates['pyg_schnet']:8.0f} mol/s   "
              f"torch_geometric.SchNet {rates['torch_geometric']:8.0f} "
              f'mol/s   ratio {ratio:.2f}')
        if device.type == 'cuda':
            peak = torch.cuda.max_memory_allocated() / 2**20
            print(f'peak GPU memory {peak:.0f} MiB (both models)')


if __name__ == '__main__':
    main()
