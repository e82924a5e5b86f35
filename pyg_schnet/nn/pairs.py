"""Message passing over a list of unordered pairs, with a memory-lean
backward."""
from typing import Optional, Tuple

import torch
from torch import Tensor


class _PairMessages(torch.autograd.Function):
    r""":math:`\mathbf{y}_i = \sum_{(i,j)} \mathbf{x}_j \odot
    \mathbf{W}_{ij}` over both directions of every pair."""
    @staticmethod
    def forward(ctx, x: Tensor, W: Tensor, i: Tensor, j: Tensor) -> Tensor:
        ctx.save_for_backward(x, W, i, j)
        out = torch.zeros_like(x)
        out.index_add_(0, i, x.index_select(0, j) * W)
        out.index_add_(0, j, x.index_select(0, i) * W)
        return out

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tuple:
        x, W, i, j = ctx.saved_tensors
        grad_x, grad_W = pair_messages_backward(
            grad, x, W, i, j, ctx.needs_input_grad[0],
            ctx.needs_input_grad[1])
        return grad_x, grad_W, None, None


def pair_messages_backward(grad: Tensor, x: Tensor, W: Tensor, i: Tensor,
                           j: Tensor, need_x: bool = True,
                           need_W: bool = True, symmetric: bool = True
                           ) -> Tuple[Optional[Tensor], Optional[Tensor]]:
    r"""The gradients of :math:`\mathbf{y}_i = \sum \mathbf{x}_j \odot
    \mathbf{W}_{ij}` (and, with :obj:`symmetric`, :math:`\mathbf{y}_j
    \mathrel{+}= \mathbf{x}_i \odot \mathbf{W}_{ij}`) for :obj:`x` and
    :obj:`W` from :obj:`grad` :math:`= \partial L / \partial
    \mathbf{y}`, in differentiable operations only, so that forces can be
    trained (double backward)."""
    grad_i = grad.index_select(0, i)
    grad_j = grad.index_select(0, j) if symmetric else None
    grad_x = grad_W = None
    if need_x:
        grad_x = torch.zeros_like(x).index_add(0, j, grad_i * W)
        if symmetric:
            grad_x = grad_x.index_add(0, i, grad_j * W)
    if need_W:
        grad_W = grad_i * x.index_select(0, j)
        if symmetric:
            grad_W = grad_W + grad_j * x.index_select(0, i)
    return grad_x, grad_W


def pair_messages(x: Tensor, W: Tensor, edge_index: Tensor) -> Tensor:
    r"""Sums :math:`\mathbf{x}_j \odot \mathbf{W}_{ij}` into atom :math:`i`
    and :math:`\mathbf{x}_i \odot \mathbf{W}_{ij}` into atom :math:`j` for
    every pair :math:`(j, i)` of :obj:`edge_index` (each unordered pair
    once).

    The same as gathering both directions and scattering them, but the
    backward keeps only :obj:`x` :obj:`[N, F]` and :obj:`W` :obj:`[P, F]`
    rather than the two gathered :obj:`[P, F]` copies of :obj:`x`, and is
    itself differentiable (force training).

    Shapes:
        - **input:** :obj:`x` :math:`(N, F)`, :obj:`W` :math:`(P, F)`,
          :obj:`edge_index` :math:`(2, P)`
        - **output:** :math:`(N, F)`
    """
    if torch.jit.is_scripting():
        j, i = edge_index[0], edge_index[1]
        out = torch.zeros_like(x)
        out.index_add_(0, i, x.index_select(0, j) * W)
        out.index_add_(0, j, x.index_select(0, i) * W)
        return out
    return _PairMessages.apply(x, W, edge_index[1], edge_index[0])
