"""CFConv and DTNNInteraction mix with stock PyG layers: the hybrid model
of examples/hybrid_layers.py trains and its loss drops."""
import importlib.util
from pathlib import Path

import pytest
import torch

EXAMPLE = Path(__file__).parents[1] / 'examples' / 'hybrid_layers.py'


def load_example():
    spec = importlib.util.spec_from_file_location('hybrid_layers', EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize('stock', ['graph', 'gat'])
def test_hybrid_model_trains(stock):
    example = load_example()
    torch.manual_seed(0)
    dataset = example.emt_molecules(24)
    model = example.Hybrid(stock, channels=32)
    assert any(type(m).__name__ == ('GATConv' if stock == 'gat'
                                    else 'GraphConv')
               for m in model.modules())
    history = example.fit(model, dataset, epochs=15, lr=3e-3)
    assert history[-1] < 0.5 * history[0], history
