"""Atom-wise readout: per-atom network, then a sum or mean per graph."""
from typing import Optional, Union

import torch
from torch import Tensor
from torch_geometric.nn import Linear
from torch_geometric.utils import scatter

from pyg_schnet.nn.activation import ShiftedSoftplus

_ACTIVATIONS = {'ssp': ShiftedSoftplus, 'tanh': torch.nn.Tanh,
                'silu': torch.nn.SiLU}


class Atomwise(torch.nn.Module):
    r"""Atom-wise readout of SchNet and DTNN: a per-atom network, a
    standardisation and an aggregation per graph
    (`"SchNet - a deep learning architecture for molecules and materials"
    <https://arxiv.org/abs/1712.06113>`_)

    .. math::
        y_i = \sigma \left( \mathbf{W}_2\, g(\mathbf{W}_1 \mathbf{x}_i +
        \mathbf{b}_1) + \mathbf{b}_2 \right) + \mu,
        \qquad
        Y = \sum_{i \in \mathcal{G}} y_i \;\; (\text{extensive}) \quad
        \text{or} \quad
        Y = \frac{1}{|\mathcal{G}|}\sum_{i \in \mathcal{G}} y_i \;\;
        (\text{intensive}),

    where :math:`g` is the activation and :math:`\mu`, :math:`\sigma` are
    buffers (per-atom mean and standard deviation of the target, in the
    target's unit, e.g. eV) that survive :obj:`state_dict` round trips.
    The per-atom contributions :math:`y_i` are returned by
    :meth:`per_atom`.

    Args:
        in_channels (int): Atom feature size.
        out_channels (int, optional): Number of targets. (default: :obj:`1`)
        hidden_channels (int, optional): Hidden layer size.
            (default: :obj:`in_channels // 2`)
        activation (str or torch.nn.Module, optional): :obj:`"ssp"`,
            :obj:`"tanh"`, :obj:`"silu"` or a module. (default: :obj:`"ssp"`)
        aggr (str, optional): :obj:`"sum"` (extensive) or :obj:`"mean"`
            (intensive). (default: :obj:`"sum"`)
        mean (float, optional): Per-atom shift :math:`\mu` in the target's
            unit. (default: :obj:`0.0`)
        std (float, optional): Per-atom scale :math:`\sigma` in the target's
            unit. (default: :obj:`1.0`)

    Shapes:
        - **input:** node features :math:`(|\mathcal{V}|, F)`, batch vector
          :math:`(|\mathcal{V}|)` (sorted), :obj:`num_graphs` :math:`B`
        - **output:** :math:`(B, \text{out\_channels})`
    """
    def __init__(self, in_channels: int, out_channels: int = 1,
                 hidden_channels: Optional[int] = None,
                 activation: Union[str, torch.nn.Module] = 'ssp',
                 aggr: str = 'sum', mean: float = 0.0, std: float = 1.0):
        super().__init__()
        if aggr not in ('sum', 'mean'):
            raise ValueError(f"'aggr' must be 'sum' or 'mean' (got '{aggr}')")
        if isinstance(activation, str):
            if activation not in _ACTIVATIONS:
                raise ValueError(f"Unknown activation '{activation}' "
                                 f"(choose from {sorted(_ACTIVATIONS)})")
            activation = _ACTIVATIONS[activation]()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.hidden_channels = hidden_channels or max(in_channels // 2, 1)
        self.aggr = aggr
        self.lin1 = Linear(in_channels, self.hidden_channels,
                           weight_initializer='glorot',
                           bias_initializer='zeros')
        self.act = activation
        self.lin2 = Linear(self.hidden_channels, out_channels,
                           weight_initializer='glorot',
                           bias_initializer='zeros')
        self.register_buffer('mean', torch.full((out_channels, ), mean))
        self.register_buffer('std', torch.full((out_channels, ), std))
        self.reset_parameters()

    def reset_parameters(self):
        self.lin1.reset_parameters()
        self.lin2.reset_parameters()

    def per_atom(self, x: Tensor) -> Tensor:
        r"""Per-atom contributions :math:`y_i`, shape
        :math:`(|\mathcal{V}|, \text{out\_channels})`."""
        return self.lin2(self.act(self.lin1(x))) * self.std + self.mean

    def aggregate(self, y: Tensor, batch: Tensor, num_graphs: int) -> Tensor:
        r"""Sums or averages per-atom values :obj:`y` per graph."""
        return scatter(y, batch, dim=0, dim_size=num_graphs,
                       reduce=self.aggr)

    def forward(self, x: Tensor, batch: Tensor, num_graphs: int) -> Tensor:
        return self.aggregate(self.per_atom(x), batch, num_graphs)

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}({self.in_channels}, '
                f'{self.out_channels}, '
                f'hidden_channels={self.hidden_channels}, '
                f"aggr='{self.aggr}')")
