"""Radius graphs of molecules (no periodic images), built with
:mod:`torch_cluster`."""
from typing import Optional

import torch
import torch_cluster
from torch import Tensor

_INITIAL_CAP = 64


def radius_graph(pos: Tensor, cutoff: float, batch: Optional[Tensor] = None,
                 max_num_neighbors: Optional[int] = None) -> Tensor:
    r"""All pairs of distinct atoms of the same graph closer than
    :obj:`cutoff`, without silent truncation.

    :func:`torch_cluster.radius_graph` keeps at most
    :obj:`max_num_neighbors` neighbours per atom and drops the others at
    random. Here, with :obj:`max_num_neighbors=None` (the default), the cap
    is raised until no atom reaches it, so the result is always the full
    neighbour set; with an explicit cap, a :class:`ValueError` reports how
    many atoms reach it instead of dropping neighbours.

    Args:
        pos (torch.Tensor): Positions :obj:`[N, 3]` in Å.
        cutoff (float): Cutoff radius in Å.
        batch (torch.Tensor, optional): Sorted graph index per atom
            :obj:`[N]`. Atoms of different graphs are never connected.
        max_num_neighbors (int, optional): Hard cap on neighbours per atom,
            or :obj:`None` for none.

    Returns:
        :obj:`edge_index` :obj:`[2, E]`: row 0 the neighbour (source)
        :math:`j`, row 1 the centre (target) :math:`i`, both directions of
        every pair present.
    """
    if not cutoff > 0:
        raise ValueError(f"'cutoff' must be positive (got {cutoff} Å)")
    num_nodes = pos.size(0)
    pos = pos.detach()
    if max_num_neighbors is not None:
        # Ask for one more than the cap: an atom that gets more has lost
        # neighbours under the cap, one that gets exactly the cap has not.
        edge_index = _query(pos, cutoff, batch, max_num_neighbors + 1)
        degree = torch.bincount(edge_index[1], minlength=num_nodes)
        over = int((degree > max_num_neighbors).sum())
        if over:
            raise ValueError(
                f'{over} atoms have more than max_num_neighbors='
                f'{max_num_neighbors} neighbours within {cutoff} Å; '
                f'neighbours would be dropped. Raise the cap or pass '
                f'max_num_neighbors=None')
        return edge_index
    cap = min(_INITIAL_CAP, max(num_nodes, 1))
    while True:
        edge_index = _query(pos, cutoff, batch, cap)
        degree = torch.bincount(edge_index[1], minlength=num_nodes)
        # An atom can only have lost neighbours if it reached the cap.
        if cap >= num_nodes or not bool((degree >= cap).any()):
            return edge_index
        cap = min(2 * cap, num_nodes)


def _query(pos: Tensor, cutoff: float, batch: Optional[Tensor],
           cap: int) -> Tensor:
    return torch_cluster.radius_graph(pos, r=cutoff, batch=batch, loop=False,
                                      max_num_neighbors=cap,
                                      flow='source_to_target')
