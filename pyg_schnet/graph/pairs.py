r"""Each unordered pair once: the half of a symmetric edge list that the
models compute pair terms on.

A radius graph holds both directions of every pair: :math:`(j \to i, \mathbf
S)` and :math:`(i \to j, -\mathbf S)`. Everything SchNet and DTNN compute
from a distance alone (Gaussian expansion, filter network, cutoff) is the
same for both, so it is computed once per pair and used for both messages.
"""
from typing import Optional

import torch
from torch import Tensor


def _lex_positive(offsets: Tensor) -> Tensor:
    r"""Whether the first non-zero entry of each row is positive."""
    first = torch.where(offsets[:, 0] != 0, offsets[:, 0],
                        torch.where(offsets[:, 1] != 0, offsets[:, 1],
                                    offsets[:, 2]))
    return first > 0


def canonical_mask(edge_index: Tensor,
                   cell_offsets: Optional[Tensor] = None) -> Tensor:
    r"""For each edge :math:`(j \to i, \mathbf S)`, whether it is the
    representative of its pair: :math:`j < i`, or :math:`j = i` (a periodic
    image of the atom itself) and :math:`\mathbf S` lexicographically
    positive. Of the two directions of a pair exactly one is."""
    j, i = edge_index[0], edge_index[1]
    keep = j < i
    if cell_offsets is not None:
        keep = keep | ((j == i) & _lex_positive(cell_offsets))
    return keep


def half_pairs(edge_index: Tensor, cell_offsets: Optional[Tensor] = None,
               num_nodes: Optional[int] = None) -> Optional[Tensor]:
    r"""The positions of one edge per pair in :obj:`edge_index` if the list
    is symmetric (every edge's reverse, with the opposite image shift, is
    in it exactly once), else :obj:`None`.

    The check costs a sort of the edges; graphs built by this package are
    symmetric, graphs from elsewhere (a directed k-NN graph, say) may not
    be, and then the models use every edge as given.

    Args:
        edge_index (torch.Tensor): :obj:`[2, E]`, row 0 the neighbour
            :math:`j`, row 1 the centre :math:`i`.
        cell_offsets (torch.Tensor, optional): Image shifts :obj:`[E, 3]`.
        num_nodes (int, optional): Number of atoms (default: the largest
            index + 1).
    """
    num_edges = edge_index.size(1)
    if num_edges % 2:
        return None
    if num_edges == 0:
        return torch.zeros(0, dtype=torch.long, device=edge_index.device)
    j, i = edge_index[0].long(), edge_index[1].long()
    n = int(num_nodes if num_nodes is not None else
            int(torch.maximum(j.max(), i.max())) + 1)
    low, high = torch.minimum(i, j), torch.maximum(i, j)
    key = low * n + high
    forward = canonical_mask(edge_index, cell_offsets)
    if cell_offsets is not None:
        shift = cell_offsets.long()
        # The pair's shift seen from its representative direction.
        shift = torch.where(forward.unsqueeze(-1), shift, -shift)
        span = int(shift.abs().max()) if shift.numel() else 0
        m = 2 * span + 1
        if float(n) * n * m**3 >= 2.0**62:
            return None  # would overflow the key; use the full list
        shift = shift + span
        key = ((key * m + shift[:, 0]) * m + shift[:, 1]) * m + shift[:, 2]
    # Representatives first, then their reverses, each sorted by pair key:
    # a symmetric list pairs them up one to one.
    order = torch.argsort(key * 2 + (~forward).long())
    sorted_key = key[order]
    sorted_fwd = forward[order]
    if not (bool(sorted_fwd[0::2].all()) and
            not bool(sorted_fwd[1::2].any()) and
            torch.equal(sorted_key[0::2], sorted_key[1::2])):
        return None
    return order[0::2]
