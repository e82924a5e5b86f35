"""CFConv and DTNNInteraction mix with stock PyG layers."""
import pytest
import torch
from torch_geometric.loader import DataLoader
from torch_geometric.nn import GATConv, GraphConv, global_add_pool

from pyg_schnet.graph import radius_graph
from pyg_schnet.models import edge_vectors
from pyg_schnet.nn import CFConv, DTNNInteraction, GaussianRBF, ShiftedSoftplus

from conftest import emt_molecules


class Hybrid(torch.nn.Module):
    def __init__(self, conv: str, channels: int = 32, cutoff: float = 4.0):
        super().__init__()
        self.cutoff = cutoff
        self.embedding = torch.nn.Embedding(10, channels)
        self.rbf = GaussianRBF(0.0, cutoff, 20)
        self.cfconv = CFConv(channels, num_gaussians=20, cutoff=cutoff)
        self.dtnn = DTNNInteraction(channels, 16, 20, cutoff=cutoff)
        self.stock = GraphConv(channels, channels) if conv == 'graph' \
            else GATConv(channels, channels, heads=1)
        self.act = ShiftedSoftplus()
        self.out = torch.nn.Linear(channels, 1)

    def forward(self, data):
        edge_index = radius_graph(data.pos, self.cutoff, data.batch)
        d = edge_vectors(data.pos, edge_index, data.batch).norm(dim=-1)
        e = self.rbf(d)
        x = self.embedding(data.z)
        x = x + self.cfconv(x, edge_index, d, e)
        x = self.act(self.stock(x, edge_index))
        x = x + self.dtnn(x, edge_index, d, e)
        return global_add_pool(self.out(x), data.batch).squeeze(-1)


@pytest.mark.parametrize('conv', ['graph', 'gat'])
def test_hybrid_model_trains(conv):
    torch.manual_seed(0)
    dataset = emt_molecules(24)
    energies = torch.cat([d.energy for d in dataset])
    mean, std = energies.mean(), energies.std()
    model = Hybrid(conv)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    loader = DataLoader(dataset, batch_size=8, shuffle=True)

    def epoch_loss(train: bool) -> float:
        total = 0.0
        for batch in loader:
            loss = torch.nn.functional.mse_loss(
                model(batch), (batch.energy - mean) / std)
            if train:
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
            total += loss.item() * batch.num_graphs
        return total / len(dataset)

    with torch.no_grad():
        before = epoch_loss(train=False)
    for _ in range(15):
        epoch_loss(train=True)
    with torch.no_grad():
        after = epoch_loss(train=False)
    assert after < 0.5 * before, (before, after)
