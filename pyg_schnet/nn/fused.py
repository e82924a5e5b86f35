"""The fused continuous-filter convolution: one C++ operator for SchNet's
filter network, cutoff and pair messages (inference and MD)."""
import contextlib
import glob
import os
import threading
from typing import Iterator, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from pyg_schnet.nn.activation import shifted_softplus
from pyg_schnet.nn.pairs import pair_messages_backward

_LIBRARY = os.path.join(os.path.dirname(os.path.dirname(__file__)),
                        '_cfconv*')
_LOAD_ERROR: Optional[str] = None


def _load() -> bool:
    global _LOAD_ERROR
    found = sorted(glob.glob(_LIBRARY))
    if not found:
        _LOAD_ERROR = ('pyg_schnet was installed without its C++ operator '
                       '(no compiler, or an isolated build): reinstall '
                       'with `pip install --no-build-isolation -e .`, as '
                       'scripts/setup.sh does')
        return False
    try:
        torch.ops.load_library(found[0])
    except (OSError, RuntimeError) as error:
        _LOAD_ERROR = f'the C++ operator {found[0]} did not load: {error}'
        return False
    return True


_AVAILABLE = _load()


def fused_available() -> bool:
    r"""Whether the fused CFConv operator (``torch.ops.pyg_schnet.cfconv``,
    built from ``pyg_schnet/csrc/cfconv.cpp`` by the install) is loaded.
    Without it every model runs the reference path: the same numbers,
    slower."""
    return _AVAILABLE


def fused_unavailable_reason() -> Optional[str]:
    r"""Why :func:`fused_available` is :obj:`False` (:obj:`None` when it is
    not)."""
    return _LOAD_ERROR


#: Up to this many filter elements (pairs × filters) the fused operator
#: keeps its filters for the backward pass; above it, it recomputes them
#: tile by tile (memory flat in the number of pairs).
KEEP_FILTER_ELEMENTS = 2**24

_FROZEN = threading.local()  # per thread: depth of frozen_weights()


@contextlib.contextmanager
def frozen_weights() -> Iterator[None]:
    r"""Inside it, the fused operator computes no gradients of the filter
    weights: for callers that differentiate only with respect to positions
    or strain (forces, stress), which would otherwise pay two GEMMs per
    pair tile for gradients nobody reads. :meth:`~pyg_schnet.models.
    AtomisticModel.evaluate` uses it outside training."""
    _FROZEN.depth = getattr(_FROZEN, 'depth', 0) + 1
    try:
        yield
    finally:
        _FROZEN.depth -= 1


if _AVAILABLE:
    @torch.library.register_fake('pyg_schnet::cfconv')
    def _cfconv_fake(x, rbf, fc, w1, b1, w2, b2, i, j, threshold,
                     activations, symmetric, save):
        empty = x.new_empty(0)
        if not save:
            return torch.empty_like(x), empty, empty, empty
        kept = x.new_empty(rbf.size(0), x.size(1))
        return (torch.empty_like(x), kept, torch.empty_like(kept),
                torch.empty_like(kept) if activations == 2 else empty)

    @torch.library.register_fake('pyg_schnet::cfconv_backward')
    def _cfconv_backward_fake(grad, x, rbf, fc, w1, b1, w2, b2, i, j, raw,
                              dh, dg, threshold, activations, symmetric,
                              need_x, need_rbf, need_fc, need_weights):
        def maybe(flag, like):
            return torch.empty_like(like) if flag else x.new_empty(0)
        return (maybe(need_x, x), maybe(need_rbf, rbf), maybe(need_fc, fc),
                maybe(need_weights, w1), maybe(need_weights, b1),
                maybe(need_weights, w2), maybe(need_weights, b2))


class _FusedCFConv(torch.autograd.Function):
    r"""Autograd of ``pyg_schnet::cfconv``: the forward keeps what the
    hand-written backward (``pyg_schnet::cfconv_backward``) needs. A plain
    :class:`torch.autograd.Function` (traced by :func:`torch.compile` and
    :func:`torch.export`) rather than :func:`torch.library.register_autograd`,
    whose Python wrapper cost ~0.1 ms per call here."""
    @staticmethod
    def forward(ctx, x, rbf, fc, w1, b1, w2, b2, i, j, threshold,
                activations, symmetric, save):
        out, raw, dh, dg = torch.ops.pyg_schnet.cfconv(
            x, rbf, fc, w1, b1, w2, b2, i, j, threshold, activations,
            symmetric, save)
        ctx.save_for_backward(x, rbf, fc, w1, b1, w2, b2, i, j, raw, dh,
                              dg)
        ctx.options = (threshold, activations, symmetric)
        return out

    @staticmethod
    def backward(ctx, grad):
        x, rbf, fc, w1, b1, w2, b2, i, j, raw, dh, dg = ctx.saved_tensors
        need = ctx.needs_input_grad
        if torch.is_grad_enabled():
            # create_graph=True (Hessians, force training outside train
            # mode): the reference formula, differentiable to any order.
            return _differentiable_backward(
                grad, (x, rbf, fc, w1, b1, w2, b2), i, j, need,
                *ctx.options)
        weights = any(need[3:7])
        out = torch.ops.pyg_schnet.cfconv_backward(
            grad, x, rbf, fc, w1, b1, w2, b2, i, j, raw, dh, dg,
            *ctx.options, need[0], need[1], need[2], weights)
        grads = [out[0] if need[0] else None, out[1] if need[1] else None,
                 out[2] if need[2] else None]
        grads += [g if weights and n else None
                  for g, n in zip(out[3:], need[3:7], strict=True)]
        return (*grads, None, None, None, None, None, None)


def _ssp_grad(v: Tensor, threshold: float) -> Tensor:
    # d ssp / dv as torch's softplus takes it: 1 above the threshold.
    return torch.where(v > threshold, torch.ones_like(v), torch.sigmoid(v))


def _differentiable_backward(grad: Tensor, inputs: Tuple[Tensor, ...],
                             i: Tensor, j: Tensor, need: Tuple[bool, ...],
                             threshold: float, activations: int,
                             symmetric: bool) -> Tuple:
    r"""The operator's backward pass written in PyTorch operators, so that
    it is itself differentiable (Hessians; :obj:`create_graph=True`)."""
    x, rbf, fc, w1, b1, w2, b2 = inputs
    h = F.linear(rbf, w1, b1)
    s = shifted_softplus(h, threshold)
    g = F.linear(s, w2, b2)
    raw = shifted_softplus(g, threshold) if activations == 2 else g
    out = [None] * 7
    out[0], grad_filter = pair_messages_backward(
        grad, x, raw * fc.unsqueeze(-1), i, j, need[0], True, symmetric)
    if need[2]:
        out[2] = (grad_filter * raw).sum(-1)
    if any(need[1:2]) or any(need[3:7]):
        grad_g = grad_filter * fc.unsqueeze(-1)
        if activations == 2:
            grad_g = grad_g * _ssp_grad(g, threshold)
        grad_h = (grad_g @ w2) * _ssp_grad(h, threshold)
        if need[1]:
            out[1] = grad_h @ w1
        if need[3]:
            out[3] = grad_h.t() @ rbf
        if need[4]:
            out[4] = grad_h.sum(0)
        if need[5]:
            out[5] = grad_g.t() @ s
        if need[6]:
            out[6] = grad_g.sum(0)
    return (*out, None, None, None, None, None, None)


def fused_cfconv(x: Tensor, edge_attr: Tensor, cutoff_values: Tensor,
                 lin1: Tuple[Tensor, Tensor], lin2: Tuple[Tensor, Tensor],
                 edge_index: Tensor, threshold: float = 20.0,
                 activations: int = 1, symmetric: bool = True) -> Tensor:
    r"""SchNet's continuous-filter convolution in one operator:

    .. math::
        \mathbf{W}_{ij} = f_c(d_{ij})\, a\!\left(\mathbf{W}_2\,
        \mathrm{ssp}(\mathbf{W}_1 \mathbf{e}_{ij} + \mathbf{b}_1) +
        \mathbf{b}_2\right), \qquad
        \mathbf{y}_i = \sum_{j} \mathbf{x}_j \odot \mathbf{W}_{ij},

    (:math:`a = \mathrm{ssp}` with :obj:`activations=2`, the identity with
    1), and with :obj:`symmetric` also :math:`\mathbf{y}_j \mathrel{+}=
    \mathbf{x}_i \odot \mathbf{W}_{ij}` for each listed pair: exactly
    :class:`~pyg_schnet.nn.CFConv`. The backward pass is written by hand
    (gradients of :obj:`x`, :obj:`edge_attr`, :obj:`cutoff_values` and,
    outside :func:`frozen_weights`, the weights). Up to
    :data:`KEEP_FILTER_ELEMENTS` pairs × filters the filters and the
    activations' derivatives are kept for it; above, pairs are processed
    in tiles of 512 and nothing of size :obj:`[P, F]` is kept: the
    backward pass recomputes the filters (memory flat in the number of
    pairs). Differentiated with :obj:`create_graph=True` (Hessians), the
    backward pass is the reference formula in PyTorch operators instead,
    differentiable to any order (slower, the same numbers); training
    takes the reference path anyway.

    Args:
        x (torch.Tensor): Atom features :obj:`[N, F]`.
        edge_attr (torch.Tensor): Distance expansions :obj:`[P, K]`.
        cutoff_values (torch.Tensor): :math:`f_c(d_{ij})` :obj:`[P]`.
        lin1 (tuple): :math:`(\mathbf{W}_1, \mathbf{b}_1)`, shapes
            :obj:`[F, K]`, :obj:`[F]`.
        lin2 (tuple): :math:`(\mathbf{W}_2, \mathbf{b}_2)`, shapes
            :obj:`[F, F]`, :obj:`[F]`.
        edge_index (torch.Tensor): :obj:`[2, P]`, row 0 :math:`j`, row 1
            :math:`i`.
        threshold (float, optional): The shifted softplus' threshold.
            (default: :obj:`20.0`)
        activations (int, optional): :obj:`1` or :obj:`2` (see above).
            (default: :obj:`1`)
        symmetric (bool, optional): Each pair carries both messages.
            (default: :obj:`True`)

    Shapes:
        - **input:** as in Args
        - **output:** :math:`(N, F)`
    """
    if not _AVAILABLE:
        raise RuntimeError(f'the fused CFConv is not available: '
                           f'{_LOAD_ERROR}')
    edge_index = edge_index.long()
    weights = [*lin1, *lin2]
    if getattr(_FROZEN, 'depth', 0):
        weights = [w.detach() for w in weights]
    # Keep the filters for the backward pass of small graphs only (traced
    # programs recompute: their number of pairs is not known).
    save = torch.is_grad_enabled() and \
        not torch.compiler.is_compiling() and \
        edge_attr.size(0) * x.size(1) <= KEEP_FILTER_ELEMENTS
    return _FusedCFConv.apply(
        x, edge_attr, cutoff_values, *weights, edge_index[1], edge_index[0],
        float(threshold), int(activations), bool(symmetric), save)

