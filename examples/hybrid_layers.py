"""CFConv and DTNNInteraction next to stock PyG layers (GATConv), trained
on energies of rattled molecules labelled with ASE's EMT calculator.

    python examples/hybrid_layers.py
"""
import numpy as np
import torch
from ase.build import molecule
from ase.calculators.emt import EMT
from torch_geometric.loader import DataLoader
from torch_geometric.nn import GATConv, global_add_pool

from pyg_schnet.data import from_ase, label_structures
from pyg_schnet.graph import radius_graph
from pyg_schnet.models import edge_vectors
from pyg_schnet.nn import CFConv, DTNNInteraction, GaussianRBF

rng = np.random.default_rng(0)
structures = []
for name in ['CH3CH2OH', 'C6H6', 'H2O', 'NH3', 'CH3CN', 'HCOOH'] * 8:
    atoms = molecule(name)
    atoms.positions += rng.normal(0, 0.05, atoms.positions.shape)
    structures.append(atoms)
dataset = [from_ase(a) for a in label_structures(structures, EMT)]


class Hybrid(torch.nn.Module):
    def __init__(self, channels=64, cutoff=4.0):
        super().__init__()
        self.cutoff = cutoff
        self.embedding = torch.nn.Embedding(10, channels)
        self.rbf = GaussianRBF(0.0, cutoff, 32)
        self.cfconv = CFConv(channels, num_gaussians=32, cutoff=cutoff)
        self.gat = GATConv(channels, channels)
        self.dtnn = DTNNInteraction(channels, 32, 32, cutoff=cutoff)
        self.out = torch.nn.Linear(channels, 1)

    def forward(self, data):
        edge_index = radius_graph(data.pos, self.cutoff, data.batch)
        d = edge_vectors(data.pos, edge_index, data.batch).norm(dim=-1)
        e = self.rbf(d)
        x = self.embedding(data.z)
        x = x + self.cfconv(x, edge_index, d, e)
        x = x + torch.tanh(self.gat(x, edge_index))
        x = x + self.dtnn(x, edge_index, d, e)
        return global_add_pool(self.out(x), data.batch).squeeze(-1)


energies = torch.cat([d.energy for d in dataset]).float()
mean, std = energies.mean(), energies.std()
model = Hybrid()
optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
for epoch in range(30):
    total = 0.0
    for batch in DataLoader(dataset, batch_size=8, shuffle=True):
        loss = (model(batch) - (batch.energy.float() - mean) / std).pow(2)
        loss = loss.mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        total += loss.item() * batch.num_graphs
    if epoch % 10 == 9:
        mse = total / len(dataset)
        print(f'epoch {epoch + 1}: standardised MSE {mse:.4f}')
