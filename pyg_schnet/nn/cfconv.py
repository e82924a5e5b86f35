"""SchNet's continuous-filter convolution and interaction block."""
from typing import Optional

import torch
from torch import Tensor
from torch.utils.checkpoint import checkpoint
from torch_geometric.nn import Linear, MessagePassing

from pyg_schnet.nn.activation import ShiftedSoftplus
from pyg_schnet.nn.cutoff import CosineCutoff, StepCutoff
from pyg_schnet.nn.fused import fused_available, fused_cfconv
from pyg_schnet.nn.pairs import pair_messages

# Filters of more elements than this ([P, F], 64 MB in float32) are
# recomputed in the backward pass outside training (see CFConv.forward).
_RECOMPUTE_ELEMENTS = 2**24
_FUSED = fused_available()


class CFConv(MessagePassing):
    r"""The continuous-filter convolution from the
    `"SchNet: A continuous-filter convolutional neural network for modeling
    quantum interactions" <https://arxiv.org/abs/1706.08566>`_ paper

    .. math::
        \mathbf{x}^{\prime}_i = \sum_{j \in \mathcal{N}(i)} \mathbf{x}_j
        \odot \mathbf{W}(d_{ij}),
        \qquad
        \mathbf{W}(d_{ij}) = f_c(d_{ij}) \left( \mathbf{W}_2\,
        \mathrm{ssp}\left(\mathbf{W}_1 \mathbf{e}(d_{ij}) + \mathbf{b}_1
        \right) + \mathbf{b}_2 \right),

    where :math:`\mathbf{e}(d_{ij}) \in \mathbb{R}^K` is the radial basis
    expansion of the distance (e.g. :class:`GaussianRBF`), the filter network
    is :math:`\mathrm{Dense}(K \to F, \mathrm{ssp})`,
    :math:`\mathrm{Dense}(F \to F)`, and :math:`f_c` is the masked
    :class:`CosineCutoff`, so the filter is exactly zero for
    :math:`d_{ij} \geq r_c`. With :obj:`envelope="none"` (the original
    SchNet code, which has no cutoff function) :math:`f_c(d) = [d < r_c]`
    is a plain step: filters are not damped, and pairs at or beyond the
    cutoff still contribute nothing, whatever graph is passed in (the
    energy is then discontinuous where a pair crosses :math:`r_c`; the
    original C20 models use :math:`r_c = 20` Å, beyond every pair).

    One shifted softplus in the filter network is SchNetPack's choice (and
    this package's default); the 2017 paper's filter network applies it
    after both dense layers,
    :math:`\mathbf{W}(d) = f_c(d)\,\mathrm{ssp}(\mathbf{W}_2\,
    \mathrm{ssp}(\mathbf{W}_1 \mathbf{e}(d) + \mathbf{b}_1) +
    \mathbf{b}_2)`, which :obj:`filter_activations=2` reproduces.

    Args:
        channels (int): Number of filters :math:`F`; also the size of each
            input and output node feature vector.
        num_gaussians (int, optional): Size :math:`K` of the edge expansion
            :obj:`edge_attr`. (default: :obj:`50`)
        cutoff (float, optional): Cutoff radius :math:`r_c` in Å.
            (default: :obj:`5.0`)
        filter_activations (int, optional): Shifted softplus layers in the
            filter network: :obj:`1` (SchNetPack) or :obj:`2` (the 2017
            paper and the original SchNet code). (default: :obj:`1`)
        envelope (str, optional): :obj:`"cosine"` (:class:`CosineCutoff`)
            or :obj:`"none"` (the step :math:`[d < r_c]`, the original
            SchNet code). (default: :obj:`"cosine"`)
        ssp_threshold (float, optional): The shifted softplus' threshold
            (see :class:`ShiftedSoftplus`; 14 in the original SchNet code).
            (default: :obj:`20.0`)
        aggr (str, optional): The aggregation scheme. (default: :obj:`"add"`)
        **kwargs (optional): Additional arguments of
            :class:`torch_geometric.nn.conv.MessagePassing`.

    Shapes:
        - **input:**
          node features :math:`(|\mathcal{V}|, F)`,
          edge indices :math:`(2, |\mathcal{E}|)` (row 0: neighbour
          :math:`j`, row 1: centre :math:`i`),
          edge weights :math:`(|\mathcal{E}|)`: distances :math:`d_{ij}` in Å,
          edge features :math:`(|\mathcal{E}|, K)`: expansion of
          :math:`d_{ij}`
        - **output:** node features :math:`(|\mathcal{V}|, F)`
    """
    def __init__(self, channels: int, num_gaussians: int = 50,
                 cutoff: float = 5.0, filter_activations: int = 1,
                 envelope: str = 'cosine', ssp_threshold: float = 20.0,
                 aggr: str = 'add', **kwargs):
        super().__init__(aggr=aggr, **kwargs)
        if filter_activations not in (1, 2):
            raise ValueError(f"'filter_activations' must be 1 or 2 (got "
                             f"{filter_activations!r})")
        if envelope not in ('cosine', 'none'):
            raise ValueError(f"'envelope' must be 'cosine' or 'none' (got "
                             f'{envelope!r})')
        self.envelope = envelope
        #: Use the fused operator outside training (see :meth:`forward`).
        self.fused = True
        self.ssp_threshold = float(ssp_threshold)
        self.channels = channels
        self.num_gaussians = num_gaussians
        self.cutoff = float(cutoff)
        self.filter_activations = int(filter_activations)
        layers = [
            Linear(num_gaussians, channels, weight_initializer='glorot',
                   bias_initializer='zeros'),
            ShiftedSoftplus(ssp_threshold),
            Linear(channels, channels, weight_initializer='glorot',
                   bias_initializer='zeros'),
        ]
        if filter_activations == 2:
            layers.append(ShiftedSoftplus(ssp_threshold))
        self.filter_network = torch.nn.Sequential(*layers)
        self.cutoff_fn = CosineCutoff(cutoff) if envelope == 'cosine' \
            else StepCutoff(cutoff)
        self.reset_parameters()

    def reset_parameters(self):
        super().reset_parameters()
        self.filter_network[0].reset_parameters()
        self.filter_network[2].reset_parameters()

    def filter(self, edge_weight: Tensor, edge_attr: Tensor,
               cutoff_values: Optional[Tensor] = None) -> Tensor:
        r"""The filters :math:`\mathbf{W}(d)` :obj:`[E, F]` of the edges'
        distances (Å) and expansions (:obj:`cutoff_values`:
        :math:`f_c(d)` when already computed).

        The shifted softplus' :math:`-\ln 2` is not folded into the next
        bias: in float32 the fold (:math:`\mathbf{W}_2\,
        \mathrm{softplus}(\cdot) + \mathbf{b}_2 - \ln 2\, \mathbf{W}_2
        \mathbf{1}`) cancels a large common term and moved the energy of
        864 Cu atoms by 2.3e-4 eV against 2.3e-6 eV unfolded."""
        if cutoff_values is None:
            cutoff_values = self.cutoff_fn(edge_weight)
        return self.filter_network(edge_attr) * cutoff_values.unsqueeze(-1)

    def forward(self, x: Tensor, edge_index: Tensor, edge_weight: Tensor,
                edge_attr: Tensor, symmetric: bool = False,
                cutoff_values: Optional[Tensor] = None) -> Tensor:
        r"""With :obj:`symmetric=True`, :obj:`edge_index` lists each
        unordered pair once (:func:`~pyg_schnet.graph.half_pairs`) and every
        pair carries both messages, :math:`j \to i` and :math:`i \to j`,
        with one filter: the same result as the full list, at half the cost
        of the filter network, and with a backward pass that keeps only
        the filters (:func:`~pyg_schnet.nn.pair_messages`).
        :obj:`cutoff_values` :obj:`[E]`: :math:`f_c(d)` when the caller has
        computed it (once for all interactions), else computed here.

        Outside training (evaluation mode) on the CPU, the convolution runs
        as one fused C++ operator (:func:`~pyg_schnet.nn.fused.fused_cfconv`:
        the same numbers, no :obj:`[E, F]` tensor kept, filters recomputed
        in the backward pass) unless :attr:`fused` is :obj:`False` or the
        package was installed without it; on the reference path, filters of
        more than :math:`2^{24}` elements are then recomputed in the
        backward pass rather than kept. Training always takes the
        reference path, which can be differentiated twice (force
        training)."""
        if cutoff_values is None:
            cutoff_values = self.cutoff_fn(edge_weight)
        if not torch.jit.is_scripting() and self._use_fused(x):
            return self._fused(x, edge_index, edge_attr, cutoff_values,
                               symmetric)
        if not symmetric:
            W = self.filter(edge_weight, edge_attr, cutoff_values)
            return self.propagate(edge_index, x=x, W=W)
        if self._recompute(edge_attr):
            # Outside training, for large graphs: keep only the inputs of
            # the filter network and recompute it in the backward pass,
            # instead of keeping its [P, F] activations.
            W = self._recomputed_filter(edge_weight, edge_attr,
                                        cutoff_values)
        else:
            W = self.filter(edge_weight, edge_attr, cutoff_values)
        return pair_messages(x, W, edge_index)

    @torch.jit.unused
    def _use_fused(self, x: Tensor) -> bool:
        return (self.fused and not self.training and _FUSED
                and x.device.type == 'cpu'
                and x.dtype in (torch.float32, torch.float64))

    @torch.jit.unused
    def _fused(self, x: Tensor, edge_index: Tensor, edge_attr: Tensor,
               cutoff_values: Tensor, symmetric: bool) -> Tensor:
        lin1, lin2 = self.filter_network[0], self.filter_network[2]
        return fused_cfconv(x, edge_attr, cutoff_values,
                            (lin1.weight, lin1.bias),
                            (lin2.weight, lin2.bias), edge_index,
                            self.ssp_threshold, self.filter_activations,
                            symmetric)

    @torch.jit.unused
    def _recomputed_filter(self, edge_weight: Tensor, edge_attr: Tensor,
                           cutoff_values: Tensor) -> Tensor:
        return checkpoint(self.filter, edge_weight, edge_attr,
                          cutoff_values, use_reentrant=False)

    def _recompute(self, edge_attr: Tensor) -> bool:
        if torch.jit.is_scripting() or torch.compiler.is_compiling() or \
                self.training or not torch.is_grad_enabled():
            return False
        return edge_attr.size(0) * self.channels > _RECOMPUTE_ELEMENTS

    def message(self, x_j: Tensor, W: Tensor) -> Tensor:
        return x_j * W

    def __repr__(self) -> str:
        extra = '' if self.filter_activations == 1 else \
            f', filter_activations={self.filter_activations}'
        if self.envelope != 'cosine':
            extra += f", envelope='{self.envelope}'"
        if self.ssp_threshold != 20.0:
            extra += f', ssp_threshold={self.ssp_threshold}'
        return (f'{self.__class__.__name__}({self.channels}, '
                f'num_gaussians={self.num_gaussians}, cutoff={self.cutoff}'
                f'{extra})')


class SchNetInteraction(torch.nn.Module):
    r"""The interaction block of SchNet from the
    `"SchNet: A continuous-filter convolutional neural network for modeling
    quantum interactions" <https://arxiv.org/abs/1706.08566>`_ paper.
    It returns the update :math:`\mathbf{v}_i`, which the model adds as a
    residual, :math:`\mathbf{x}_i \leftarrow \mathbf{x}_i + \mathbf{v}_i`:

    .. math::
        \mathbf{v}_i = \mathbf{W}_4\, \mathrm{ssp}\left(\mathbf{W}_3\,
        \mathrm{CFConv}\left(\mathbf{W}_{\mathrm{in2f}} \mathbf{x},
        d, \mathbf{e}(d)\right)_i + \mathbf{b}_3\right) + \mathbf{b}_4,

    i.e. atom-wise :math:`\mathrm{Dense}(H \to F)` without bias ("in2f"),
    :class:`CFConv`, :math:`\mathrm{Dense}(F \to H, \mathrm{ssp})`,
    :math:`\mathrm{Dense}(H \to H)`.

    Args:
        hidden_channels (int, optional): Atom feature size :math:`H`.
            (default: :obj:`128`)
        num_filters (int, optional): Number of filters :math:`F`.
            (default: :obj:`128`)
        num_gaussians (int, optional): Size :math:`K` of the distance
            expansion. (default: :obj:`50`)
        cutoff (float, optional): Cutoff radius :math:`r_c` in Å.
            (default: :obj:`5.0`)
        filter_activations (int, optional): Shifted softplus layers in the
            filter network (see :class:`CFConv`). (default: :obj:`1`)
        envelope (str, optional): The filters' cutoff function (see
            :class:`CFConv`). (default: :obj:`"cosine"`)
        ssp_threshold (float, optional): The shifted softplus' threshold
            (see :class:`ShiftedSoftplus`). (default: :obj:`20.0`)

    Shapes:
        - **input:**
          node features :math:`(|\mathcal{V}|, H)`,
          edge indices :math:`(2, |\mathcal{E}|)`,
          edge weights (distances, Å) :math:`(|\mathcal{E}|)`,
          edge features :math:`(|\mathcal{E}|, K)`
        - **output:** update :math:`(|\mathcal{V}|, H)`
    """
    def __init__(self, hidden_channels: int = 128, num_filters: int = 128,
                 num_gaussians: int = 50, cutoff: float = 5.0,
                 filter_activations: int = 1, envelope: str = 'cosine',
                 ssp_threshold: float = 20.0):
        super().__init__()
        self.hidden_channels = hidden_channels
        self.num_filters = num_filters
        self.num_gaussians = num_gaussians
        self.cutoff = float(cutoff)
        self.in2f = Linear(hidden_channels, num_filters, bias=False,
                           weight_initializer='glorot')
        self.conv = CFConv(num_filters, num_gaussians, cutoff,
                           filter_activations, envelope, ssp_threshold)
        self.f2out = Linear(num_filters, hidden_channels,
                            weight_initializer='glorot',
                            bias_initializer='zeros')
        self.act = ShiftedSoftplus(ssp_threshold)
        self.dense = Linear(hidden_channels, hidden_channels,
                            weight_initializer='glorot',
                            bias_initializer='zeros')
        self.reset_parameters()

    def reset_parameters(self):
        self.in2f.reset_parameters()
        self.conv.reset_parameters()
        self.f2out.reset_parameters()
        self.dense.reset_parameters()

    def forward(self, x: Tensor, edge_index: Tensor, edge_weight: Tensor,
                edge_attr: Tensor, symmetric: bool = False,
                cutoff_values: Optional[Tensor] = None) -> Tensor:
        r""":obj:`symmetric`: :obj:`edge_index` lists each pair once;
        :obj:`cutoff_values`: :math:`f_c(d)` :obj:`[E]` if already computed
        (see :meth:`CFConv.forward`)."""
        h = self.conv(self.in2f(x), edge_index, edge_weight, edge_attr,
                      symmetric, cutoff_values)
        return self.dense(self.act(self.f2out(h)))

    def __repr__(self) -> str:
        extra = '' if self.conv.filter_activations == 1 else \
            f', filter_activations={self.conv.filter_activations}'
        if self.conv.envelope != 'cosine':
            extra += f", envelope='{self.conv.envelope}'"
        if self.conv.ssp_threshold != 20.0:
            extra += f', ssp_threshold={self.conv.ssp_threshold}'
        return (f'{self.__class__.__name__}('
                f'hidden_channels={self.hidden_channels}, '
                f'num_filters={self.num_filters}, '
                f'num_gaussians={self.num_gaussians}, cutoff={self.cutoff}'
                f'{extra})')
