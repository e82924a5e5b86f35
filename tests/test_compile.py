"""The hot path compiles: no graph breaks, same numbers as eager."""
import pytest
import torch

from pyg_schnet.graph import half_pairs, radius_graph
from pyg_schnet.models import DTNN, SchNet, edge_vectors
from pyg_schnet.nn import CFConv, DTNNInteraction, SchNetInteraction

from conftest import g2_data


def _inputs(cutoff=5.0):
    data = g2_data('CH3CH2OH', torch.float32)
    edge_index = radius_graph(data.pos, cutoff)
    batch = torch.zeros(data.num_nodes, dtype=torch.long)
    return data.z, data.pos, edge_index, batch


@pytest.mark.parametrize('layer, channels, num_gaussians', [
    (CFConv(16, num_gaussians=20), 16, 20),
    (SchNetInteraction(16, 16, 20), 16, 20),
    (DTNNInteraction(16, 12, 20, cutoff=5.0), 16, 20),
])
def test_interaction_layers_have_no_graph_breaks(layer, channels,
                                                 num_gaussians):
    z, pos, edge_index, batch = _inputs()
    d = edge_vectors(pos, edge_index, batch).norm(dim=-1)
    x = torch.randn(z.numel(), channels)
    edge_attr = torch.randn(d.numel(), num_gaussians)
    torch._dynamo.reset()
    explanation = torch._dynamo.explain(layer)(x, edge_index, d, edge_attr)
    assert explanation.graph_break_count == 0, explanation.break_reasons
    assert explanation.graph_count == 1


@pytest.mark.parametrize('cls', [SchNet, DTNN])
@pytest.mark.parametrize('symmetric', [False, True])
def test_model_energy_has_no_graph_breaks(cls, symmetric):
    torch.manual_seed(0)
    model = cls(cutoff=5.0).eval()
    z, pos, edge_index, batch = _inputs()
    if symmetric:
        edge_index = edge_index[:, half_pairs(edge_index)]
    torch._dynamo.reset()
    explanation = torch._dynamo.explain(model.energy)(
        z, pos, edge_index, batch, 1, None, None, symmetric)
    assert explanation.graph_break_count == 0, explanation.break_reasons


def test_compiled_model_matches_eager_energy_and_forces():
    torch.manual_seed(0)
    model = SchNet(hidden_channels=32, num_filters=32, num_interactions=2)
    model.eval()
    z, pos, edge_index, batch = _inputs()
    torch._dynamo.reset()
    compiled = torch.compile(model.energy, fullgraph=True)

    def energy_and_forces(fn):
        p = pos.clone().requires_grad_(True)
        e = fn(z, p, edge_index, batch, 1)
        f, = torch.autograd.grad(e.sum(), p)
        return e.detach(), -f

    e_eager, f_eager = energy_and_forces(model.energy)
    e_comp, f_comp = energy_and_forces(compiled)
    torch.testing.assert_close(e_comp, e_eager, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(f_comp, f_eager, rtol=1e-4, atol=1e-5)
