"""Each layer against an independent implementation of its formula."""
import math

import numpy as np
import pytest
import torch

from pyg_schnet.nn import (
    Atomwise,
    CFConv,
    CosineCutoff,
    DTNNInteraction,
    GaussianRBF,
    SchNetInteraction,
    ShiftedSoftplus,
)


def test_gaussian_rbf_formula_with_square():
    rbf = GaussianRBF(0.0, 5.0, 50).double()
    d = torch.tensor([0.0, 0.37, 1.0, 2.5, 4.99, 6.0], dtype=torch.float64)
    mu = np.linspace(0.0, 5.0, 50)
    sigma = mu[1] - mu[0]
    expected = np.exp(-(d.numpy()[:, None] - mu[None])**2 / (2 * sigma**2))
    np.testing.assert_allclose(rbf(d).numpy(), expected, rtol=1e-12)
    assert rbf.width == pytest.approx(5.0 / 49)


def test_gaussian_rbf_from_spacing_is_dtnn_grid():
    rbf = GaussianRBF.from_spacing(0.0, 20.0, 0.2)
    assert rbf.num_gaussians == 101
    assert rbf.width == pytest.approx(0.2)
    assert float(rbf.offset[-1]) == pytest.approx(20.0)


def test_gaussian_rbf_rejects_bad_arguments():
    with pytest.raises(ValueError, match='num_gaussians'):
        GaussianRBF(0.0, 5.0, 1)
    with pytest.raises(ValueError, match='stop'):
        GaussianRBF(5.0, 5.0, 10)


def test_cosine_cutoff_values_and_mask():
    fc = CosineCutoff(4.0)
    d = torch.tensor([0.0, 2.0, 3.999999, 4.0, 6.0, 8.0], dtype=torch.float64)
    out = fc(d)
    assert out[0] == 1.0
    assert out[1] == pytest.approx(0.5)
    assert out[2] == pytest.approx(0.0, abs=1e-10)
    # Unmasked, the cosine would give 0.5 at 6 Å and 1.0 at 8 Å.
    assert out[3:].tolist() == [0.0, 0.0, 0.0]


def test_cosine_cutoff_has_zero_slope_at_cutoff():
    fc = CosineCutoff(5.0)
    d = torch.tensor([5.0 - 1e-6, 5.0 + 1e-6], dtype=torch.float64,
                     requires_grad=True)
    grad, = torch.autograd.grad(fc(d).sum(), d)
    assert grad.abs().max() < 1e-5


def test_shifted_softplus():
    x = torch.linspace(-20, 20, 101, dtype=torch.float64)
    out = ShiftedSoftplus()(x)
    expected = np.log(0.5 * np.exp(x.numpy()) + 0.5)
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-10,
                               atol=1e-12)
    assert ShiftedSoftplus()(torch.zeros(1)).item() == 0.0


def _graph(num_nodes=5, seed=0):
    gen = torch.Generator().manual_seed(seed)
    pos = torch.rand(num_nodes, 3, generator=gen, dtype=torch.float64) * 4
    edge_index = torch.tensor([[j, i] for i in range(num_nodes)
                               for j in range(num_nodes) if i != j]).t()
    d = (pos[edge_index[0]] - pos[edge_index[1]]).norm(dim=-1)
    return pos, edge_index, d


def _ssp(x):
    return np.logaddexp(0.0, x) - math.log(2.0)


def test_cfconv_matches_explicit_sum():
    torch.manual_seed(0)
    pos, edge_index, d = _graph()
    conv = CFConv(8, num_gaussians=10, cutoff=3.0).double()
    rbf = GaussianRBF(0.0, 3.0, 10).double()
    x = torch.randn(5, 8, dtype=torch.float64)
    out = conv(x, edge_index, d, rbf(d)).detach().numpy()

    W1 = conv.filter_network[0].weight.detach().numpy()
    b1 = conv.filter_network[0].bias.detach().numpy()
    W2 = conv.filter_network[2].weight.detach().numpy()
    b2 = conv.filter_network[2].bias.detach().numpy()
    mu = np.linspace(0, 3.0, 10)
    expected = np.zeros((5, 8))
    for i in range(5):
        for j in range(5):
            if i == j:
                continue
            dij = np.linalg.norm(pos[j].numpy() - pos[i].numpy())
            e = np.exp(-(dij - mu)**2 / (2 * (mu[1] - mu[0])**2))
            fc = 0.5 * (np.cos(np.pi * dij / 3.0) + 1) if dij < 3.0 else 0.0
            W = fc * (W2 @ _ssp(W1 @ e + b1) + b2)
            expected[i] += x[j].numpy() * W
    np.testing.assert_allclose(out, expected, rtol=1e-10, atol=1e-12)
    assert (d > 3.0).any(), 'the check must include pairs beyond the cutoff'


def test_schnet_interaction_composes_in2f_cfconv_dense():
    torch.manual_seed(1)
    _, edge_index, d = _graph()
    block = SchNetInteraction(6, 8, 10, 3.0).double()
    rbf = GaussianRBF(0.0, 3.0, 10).double()
    x = torch.randn(5, 6, dtype=torch.float64)
    h = block.conv(x @ block.in2f.weight.t(), edge_index, d, rbf(d))
    h = _ssp((h @ block.f2out.weight.t() + block.f2out.bias).detach()
             .numpy())
    expected = h @ block.dense.weight.detach().numpy().T + \
        block.dense.bias.detach().numpy()
    out = block(x, edge_index, d, rbf(d)).detach().numpy()
    np.testing.assert_allclose(out, expected, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize('cutoff,smooth', [(None, True), (3.0, True),
                                           (2.0, False)])
def test_dtnn_interaction_matches_explicit_sum(cutoff, smooth):
    torch.manual_seed(2)
    pos, edge_index, d = _graph()
    layer = DTNNInteraction(6, 7, 10, cutoff=cutoff, smooth=smooth).double()
    with torch.no_grad():  # non-zero biases so they are exercised
        layer.lin_cf.bias.normal_()
        layer.lin_df.bias.normal_()
        layer.lin_fc.weight.normal_()  # the original init is zero
    rbf = GaussianRBF(0.0, 3.0, 10).double()
    x = torch.randn(5, 6, dtype=torch.float64)
    out = layer(x, edge_index, d, rbf(d)).detach().numpy()

    Wcf, bcf = layer.lin_cf.weight.detach().numpy(), \
        layer.lin_cf.bias.detach().numpy()
    Wdf, bdf = layer.lin_df.weight.detach().numpy(), \
        layer.lin_df.bias.detach().numpy()
    Wfc = layer.lin_fc.weight.detach().numpy()
    e = rbf(d).numpy()
    expected = np.zeros((5, 6))
    for k, (j, i) in enumerate(edge_index.t().tolist()):
        v = np.tanh(Wfc @ ((Wcf @ x[j].numpy() + bcf) * (Wdf @ e[k] + bdf)))
        if cutoff is not None:
            dk = d[k].item()
            inside = 1.0 if dk < cutoff else 0.0
            v = v * inside * (0.5 * (np.cos(np.pi * dk / cutoff) + 1)
                              if smooth else 1.0)
        expected[i] += v
    assert (d >= 2.0).any() and (d < 2.0).any(), 'the mask must be tested'
    np.testing.assert_allclose(out, expected, rtol=1e-10, atol=1e-12)


def test_dtnn_interaction_original_init_starts_as_identity():
    layer = DTNNInteraction(6, 7, 10, cutoff=3.0)
    assert torch.equal(layer.lin_fc.weight, torch.zeros(6, 7))
    pos, edge_index, d = _graph()
    out = layer(torch.randn(5, 6, dtype=torch.float32), edge_index,
                d.float(), GaussianRBF(0.0, 3.0, 10)(d.float()))
    assert torch.equal(out, torch.zeros(5, 6))
    glorot = DTNNInteraction(6, 7, 10, init='glorot')
    assert glorot.lin_fc.weight.abs().sum() > 0
    with pytest.raises(ValueError, match='init'):
        DTNNInteraction(init='xavier')


def test_gaussian_rbf_reaches_the_papers_formulas():
    d = torch.linspace(0.0, 20.0, 57, dtype=torch.float64)
    # SchNet 2017: exp(-gamma (d - mu_k)^2), gamma = 10 / Å², mu_k = 0.1 k
    # up to 30 Å.
    rbf = GaussianRBF(0.0, 30.0, 301, width=20**-0.5).double()
    mu = 0.1 * np.arange(301)
    expected = np.exp(-10.0 * (d.numpy()[:, None] - mu[None])**2)
    np.testing.assert_allclose(rbf(d).numpy(), expected, rtol=1e-12,
                               atol=1e-300)
    # Original DTNN code: 100 centres linspace(0, 20, 100), width 0.2 Å.
    rbf = GaussianRBF(0.0, 20.0, 100, width=0.2).double()
    mu = np.linspace(0.0, 20.0, 100)
    expected = np.exp(-0.5 / 0.2**2 * (d.numpy()[:, None] - mu[None])**2)
    np.testing.assert_allclose(rbf(d).numpy(), expected, rtol=1e-12,
                               atol=1e-300)
    with pytest.raises(ValueError, match='width'):
        GaussianRBF(width=0.0)


def test_cfconv_paper_filter_has_two_shifted_softplus():
    torch.manual_seed(5)
    conv = CFConv(4, num_gaussians=6, cutoff=3.0,
                  filter_activations=2).double()
    e = torch.rand(3, 6, dtype=torch.float64)
    lin1, lin2 = conv.filter_network[0], conv.filter_network[2]
    expected = _ssp(_ssp(e.numpy() @ lin1.weight.detach().numpy().T +
                       lin1.bias.detach().numpy()) @
                   lin2.weight.detach().numpy().T +
                   lin2.bias.detach().numpy())
    np.testing.assert_allclose(conv.filter_network(e).detach().numpy(),
                               expected, rtol=1e-12)
    with pytest.raises(ValueError, match='filter_activations'):
        CFConv(4, filter_activations=3)


def test_atomwise_sum_mean_and_per_atom():
    torch.manual_seed(3)
    x = torch.randn(6, 4, dtype=torch.float64)
    batch = torch.tensor([0, 0, 0, 1, 1, 2])
    head = Atomwise(4, 1, 3, aggr='sum', mean=0.5, std=2.0).double()
    raw = head.lin2(head.act(head.lin1(x)))
    y = head.per_atom(x)
    torch.testing.assert_close(y, 2.0 * raw + 0.5)
    out = head(x, batch, num_graphs=4)
    assert out.shape == (4, 1)
    torch.testing.assert_close(out[:, 0], torch.stack(
        [y[:3].sum(), y[3:5].sum(), y[5:].sum(),
         torch.zeros((), dtype=torch.float64)]))
    head.aggr = 'mean'
    torch.testing.assert_close(head(x, batch, 3)[1, 0], y[3:5].mean())


def test_atomwise_rejects_unknown_options():
    with pytest.raises(ValueError, match='aggr'):
        Atomwise(4, aggr='max')
    with pytest.raises(ValueError, match='activation'):
        Atomwise(4, activation='relu6')


def test_reprs_are_pinned():
    assert repr(GaussianRBF()) == \
        'GaussianRBF(start=0.0, stop=5.0, num_gaussians=50)'
    assert repr(CosineCutoff()) == 'CosineCutoff(cutoff=5.0)'
    assert repr(ShiftedSoftplus()) == 'ShiftedSoftplus()'
    assert repr(CFConv(128)) == 'CFConv(128, num_gaussians=50, cutoff=5.0)'
    assert repr(SchNetInteraction()) == (
        'SchNetInteraction(hidden_channels=128, num_filters=128, '
        'num_gaussians=50, cutoff=5.0)')
    assert repr(DTNNInteraction()) == (
        'DTNNInteraction(30, num_factors=60, num_gaussians=101, '
        "cutoff=20.0, init='dtnn')")
    assert repr(DTNNInteraction(cutoff=5.0, smooth=False,
                                init='glorot')) == (
        'DTNNInteraction(30, num_factors=60, num_gaussians=101, '
        "cutoff=5.0, smooth=False, init='glorot')")
    assert repr(GaussianRBF(0.0, 30.0, 301, width=0.25)) == \
        'GaussianRBF(start=0.0, stop=30.0, num_gaussians=301, width=0.25)'
    assert repr(CFConv(64, filter_activations=2)) == \
        'CFConv(64, num_gaussians=50, cutoff=5.0, filter_activations=2)'
    assert repr(Atomwise(128)) == \
        "Atomwise(128, 1, hidden_channels=64, aggr='sum')"
