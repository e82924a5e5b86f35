"""CFConv and DTNNInteraction next to stock PyG layers (GATConv or
GraphConv), trained on energies of rattled molecules labelled with ASE's EMT
calculator.

    python examples/hybrid_layers.py

(`tests/test_mixing.py` imports `Hybrid` from here and checks it trains.)
"""
import numpy as np
import torch
from ase.build import molecule
from ase.calculators.emt import EMT
from torch_geometric.loader import DataLoader
from torch_geometric.nn import GATConv, GraphConv, global_add_pool

from pyg_schnet.data import from_ase, label_structures
from pyg_schnet.graph import radius_graph
from pyg_schnet.models import edge_vectors
from pyg_schnet.nn import CFConv, DTNNInteraction, GaussianRBF


class Hybrid(torch.nn.Module):
    r"""Embedding → CFConv → a stock PyG layer → DTNNInteraction → sum of
    atom-wise outputs."""
    def __init__(self, stock: str = 'gat', channels: int = 64,
                 cutoff: float = 4.0):
        super().__init__()
        self.cutoff = cutoff
        self.embedding = torch.nn.Embedding(10, channels)
        self.rbf = GaussianRBF(0.0, cutoff, 32)
        self.cfconv = CFConv(channels, num_gaussians=32, cutoff=cutoff)
        self.stock = GATConv(channels, channels) if stock == 'gat' \
            else GraphConv(channels, channels)
        self.dtnn = DTNNInteraction(channels, 32, 32, cutoff=cutoff)
        self.out = torch.nn.Linear(channels, 1)

    def forward(self, data):
        edge_index = radius_graph(data.pos, self.cutoff, data.batch)
        d = edge_vectors(data.pos, edge_index, data.batch).norm(dim=-1)
        e = self.rbf(d)
        x = self.embedding(data.z)
        x = x + self.cfconv(x, edge_index, d, e)
        x = x + torch.tanh(self.stock(x, edge_index))
        x = x + self.dtnn(x, edge_index, d, e)
        return global_add_pool(self.out(x), data.batch).squeeze(-1)


def emt_molecules(count: int = 48, seed: int = 0):
    r"""Rattled G2 molecules with EMT energies (eV) as PyG Data."""
    rng = np.random.default_rng(seed)
    names = ['CH3CH2OH', 'C6H6', 'H2O', 'NH3', 'CH3CN', 'HCOOH']
    structures = []
    for k in range(count):
        atoms = molecule(names[k % len(names)])
        atoms.positions += rng.normal(0, 0.05, atoms.positions.shape)
        structures.append(atoms)
    return [from_ase(a) for a in label_structures(structures, EMT)]


def fit(model, dataset, epochs: int, lr: float = 2e-3):
    r"""Adam on the standardised energy MSE; returns the loss per epoch."""
    energies = torch.cat([d.energy for d in dataset]).float()
    mean, std = energies.mean(), energies.std()
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    history = []
    for _ in range(epochs):
        total = 0.0
        for batch in DataLoader(dataset, batch_size=8, shuffle=True):
            target = (batch.energy.float() - mean) / std
            loss = (model(batch) - target).pow(2).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item() * batch.num_graphs
        history.append(total / len(dataset))
    return history


def main():
    torch.manual_seed(0)
    history = fit(Hybrid('gat'), emt_molecules(), epochs=30)
    for epoch in (0, 9, 19, 29):
        print(f'epoch {epoch + 1}: standardised MSE {history[epoch]:.4f}')


if __name__ == '__main__':
    main()
