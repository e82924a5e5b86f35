"""The factorised tensor interaction of the deep tensor neural network."""
from typing import Optional

import torch
from torch import Tensor
from torch_geometric.nn import Linear, MessagePassing

from pyg_schnet.nn.cutoff import CosineCutoff


class DTNNInteraction(MessagePassing):
    r"""The factorised tensor interaction from the
    `"Quantum-chemical insights from deep tensor neural networks"
    <https://www.nature.com/articles/ncomms13890>`_ paper. It returns the
    update :math:`\mathbf{v}_i`, which the model adds as a residual,
    :math:`\mathbf{x}_i \leftarrow \mathbf{x}_i + \mathbf{v}_i`:

    .. math::
        \mathbf{v}_i = \sum_{j \in \mathcal{N}(i)} \mathbf{v}_{ij},
        \qquad
        \mathbf{v}_{ij} = s(d_{ij}) \tanh\left(\mathbf{W}^{fc}\left(
        (\mathbf{W}^{cf} \mathbf{x}_j + \mathbf{b}^{f_1}) \odot
        (\mathbf{W}^{df} \hat{\mathbf{e}}_{ij} + \mathbf{b}^{f_2})
        \right)\right),

    where :math:`\hat{\mathbf{e}}_{ij}` is the Gaussian expansion of
    :math:`d_{ij}` (:class:`GaussianRBF`), :math:`\mathbf{W}^{cf}` and
    :math:`\mathbf{W}^{df}` map atom features and distances to
    :math:`F_a` factors, and :math:`\mathbf{W}^{fc}` (no bias) maps the
    factors back to the :math:`C` atom features. The neighbourhood excludes
    :math:`j = i` (no self loops in the graph).

    The smoothing :math:`s(d_{ij})` is the masked :class:`CosineCutoff`
    :math:`f_c(d_{ij})` when :obj:`cutoff` is given, or :math:`1` when
    :obj:`cutoff=None` (the original network, defined on all pairs of a
    molecule). It multiplies the *message*, not the expansion
    :math:`\hat{\mathbf{e}}_{ij}`: because of the bias
    :math:`\mathbf{b}^{f_2}`, a message built from a vanishing expansion
    does not vanish, and energies would jump when an atom crosses the
    cutoff of a radius graph.

    Args:
        channels (int, optional): Atom feature size :math:`C`.
            (default: :obj:`30`)
        num_factors (int, optional): Number of factors :math:`F_a`.
            (default: :obj:`60`)
        num_gaussians (int, optional): Size of the distance expansion.
            (default: :obj:`101`)
        cutoff (float, optional): Cutoff radius :math:`r_c` in Å of the
            smoothing, or :obj:`None` for none. (default: :obj:`20.0`)
        **kwargs (optional): Additional arguments of
            :class:`torch_geometric.nn.conv.MessagePassing`.

    Shapes:
        - **input:**
          node features :math:`(|\mathcal{V}|, C)`,
          edge indices :math:`(2, |\mathcal{E}|)` (row 0: neighbour
          :math:`j`, row 1: centre :math:`i`),
          edge weights :math:`(|\mathcal{E}|)`: distances :math:`d_{ij}` in Å,
          edge features :math:`(|\mathcal{E}|, K)`: expansion of
          :math:`d_{ij}`
        - **output:** update :math:`(|\mathcal{V}|, C)`
    """
    def __init__(self, channels: int = 30, num_factors: int = 60,
                 num_gaussians: int = 101, cutoff: Optional[float] = 20.0,
                 **kwargs):
        kwargs.setdefault('aggr', 'add')
        super().__init__(**kwargs)
        self.channels = channels
        self.num_factors = num_factors
        self.num_gaussians = num_gaussians
        self.cutoff = None if cutoff is None else float(cutoff)
        self.lin_cf = Linear(channels, num_factors,
                             weight_initializer='glorot',
                             bias_initializer='zeros')
        self.lin_df = Linear(num_gaussians, num_factors,
                             weight_initializer='glorot',
                             bias_initializer='zeros')
        self.lin_fc = Linear(num_factors, channels, bias=False,
                             weight_initializer='glorot')
        self.cutoff_fn = None if cutoff is None else CosineCutoff(cutoff)
        self.reset_parameters()

    def reset_parameters(self):
        super().reset_parameters()
        self.lin_cf.reset_parameters()
        self.lin_df.reset_parameters()
        self.lin_fc.reset_parameters()

    def forward(self, x: Tensor, edge_index: Tensor, edge_weight: Tensor,
                edge_attr: Tensor) -> Tensor:
        # W^cf x_j + b^f1 is computed once per atom, not once per edge.
        h = self.lin_cf(x)
        if self.cutoff_fn is None:
            smooth = None
        else:
            smooth = self.cutoff_fn(edge_weight).unsqueeze(-1)
        return self.propagate(edge_index, h=h, edge_attr=edge_attr,
                              smooth=smooth)

    def message(self, h_j: Tensor, edge_attr: Tensor,
                smooth: Optional[Tensor]) -> Tensor:
        v = torch.tanh(self.lin_fc(h_j * self.lin_df(edge_attr)))
        return v if smooth is None else v * smooth

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}({self.channels}, '
                f'num_factors={self.num_factors}, '
                f'num_gaussians={self.num_gaussians}, cutoff={self.cutoff})')
