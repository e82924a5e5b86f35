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

    The factor :math:`s(d_{ij})` is

    * :math:`f_c(d_{ij})`, the masked :class:`CosineCutoff`, with
      :obj:`smooth=True` (the default): energies stay continuous when an
      atom crosses the cutoff of a radius graph;
    * the step :math:`[d_{ij} < r_c]` with :obj:`smooth=False`: the
      original network restricted to the cutoff sphere (pairs farther than
      :math:`r_c` contribute nothing, whatever graph is passed in);
    * :math:`1` when :obj:`cutoff=None`: the original network on every
      edge of the graph (all pairs of a molecule).

    It multiplies the *message*, not the expansion
    :math:`\hat{\mathbf{e}}_{ij}`: because of the bias
    :math:`\mathbf{b}^{f_2}`, a message built from a vanishing expansion
    does not vanish.

    With :obj:`init="dtnn"` (the original code's choice)
    :math:`\mathbf{W}^{fc}` starts at zero, so each pass starts as the
    identity; :obj:`init="glorot"` draws it like the other weights (Glorot
    uniform, zero biases).

    Args:
        channels (int, optional): Atom feature size :math:`C`.
            (default: :obj:`30`)
        num_factors (int, optional): Number of factors :math:`F_a`.
            (default: :obj:`60`)
        num_gaussians (int, optional): Size of the distance expansion.
            (default: :obj:`101`)
        cutoff (float, optional): Cutoff radius :math:`r_c` in Å, or
            :obj:`None` for none. (default: :obj:`20.0`)
        smooth (bool, optional): Cosine cutoff (:obj:`True`) or hard step
            at :math:`r_c` (:obj:`False`). (default: :obj:`True`)
        init (str, optional): :obj:`"dtnn"` (zero
            :math:`\mathbf{W}^{fc}`) or :obj:`"glorot"`.
            (default: :obj:`"dtnn"`)
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
                 smooth: bool = True, init: str = 'dtnn', **kwargs):
        kwargs.setdefault('aggr', 'add')
        super().__init__(**kwargs)
        if init not in ('dtnn', 'glorot'):
            raise ValueError(f"'init' must be 'dtnn' or 'glorot' (got "
                             f"{init!r})")
        self.channels = channels
        self.num_factors = num_factors
        self.num_gaussians = num_gaussians
        self.cutoff = None if cutoff is None else float(cutoff)
        self.smooth = bool(smooth)
        self.init = init
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
        if self.init == 'dtnn':
            torch.nn.init.zeros_(self.lin_fc.weight)

    def forward(self, x: Tensor, edge_index: Tensor, edge_weight: Tensor,
                edge_attr: Tensor, symmetric: bool = False) -> Tensor:
        r"""With :obj:`symmetric=True`, :obj:`edge_index` lists each
        unordered pair once and each pair sends both messages; the distance
        factor :math:`\mathbf{W}^{df} \hat{\mathbf{e}}_{ij} +
        \mathbf{b}^{f_2}` and :math:`s(d_{ij})` are computed once for
        both."""
        # W^cf x_j + b^f1 is computed once per atom, not once per edge.
        h = self.lin_cf(x)
        if self.cutoff_fn is None:
            smooth = torch.ones_like(edge_weight).unsqueeze(-1)
        elif self.smooth:
            smooth = self.cutoff_fn(edge_weight).unsqueeze(-1)
        else:
            smooth = (edge_weight < self.cutoff_fn.cutoff).to(
                h.dtype).unsqueeze(-1)
        if not symmetric:
            return self.propagate(edge_index, h=h, edge_attr=edge_attr,
                                  smooth=smooth)
        j, i = edge_index[0], edge_index[1]
        g = self.lin_df(edge_attr)
        out = torch.zeros_like(x)
        for source, target in ((j, i), (i, j)):
            v = torch.tanh(self.lin_fc(h.index_select(0, source) * g))
            out.index_add_(0, target, v * smooth)
        return out

    def message(self, h_j: Tensor, edge_attr: Tensor,
                smooth: Tensor) -> Tensor:
        return torch.tanh(self.lin_fc(h_j * self.lin_df(edge_attr))) * smooth

    def __repr__(self) -> str:
        smooth = '' if self.smooth or self.cutoff is None else \
            ', smooth=False'
        return (f'{self.__class__.__name__}({self.channels}, '
                f'num_factors={self.num_factors}, '
                f'num_gaussians={self.num_gaussians}, cutoff={self.cutoff}'
                f"{smooth}, init='{self.init}')")
