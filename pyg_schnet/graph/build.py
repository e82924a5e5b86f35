"""One entry point that builds the graph of any structure, molecule or
(partly) periodic, and the check of a structure's geometry that uses it."""
from typing import Optional, Tuple

import torch
from torch import Tensor

from pyg_schnet.graph.periodic import periodic_radius_graph
from pyg_schnet.graph.radius import radius_graph
from pyg_schnet.graph.validation import (
    MAX_Z,
    MIN_DISTANCE,
    check_cell,
    check_distances,
    check_structure,
)


def build_graph(
    pos: Tensor,
    cutoff: float,
    batch: Optional[Tensor] = None,
    cell: Optional[Tensor] = None,
    pbc: Optional[Tensor] = None,
    num_graphs: Optional[int] = None,
) -> Tuple[Tensor, Optional[Tensor]]:
    r"""Builds the radius graph of a batch of structures.

    Molecules (no cell, or no periodic direction and an all-zero cell) go
    through :func:`pyg_schnet.graph.radius_graph` (:mod:`torch_cluster`);
    anything with a cell goes through
    :func:`pyg_schnet.graph.periodic_radius_graph`. Neither truncates
    neighbour lists.

    Args:
        pos (torch.Tensor): Positions :obj:`[N, 3]` in Å.
        cutoff (float): Cutoff radius in Å.
        batch (torch.Tensor, optional): Sorted graph index per atom.
        cell (torch.Tensor, optional): Cells :obj:`[B, 3, 3]` (rows, Å).
        pbc (torch.Tensor, optional): Periodic flags :obj:`[B, 3]`.
        num_graphs (int, optional): :math:`B`; inferred from :obj:`batch`
            when not given.

    Returns:
        :obj:`(edge_index, cell_offsets)`, where :obj:`cell_offsets` is
        :obj:`None` for molecules.
    """
    if num_graphs is None:
        num_graphs = 1 if batch is None or batch.numel() == 0 \
            else int(batch.max()) + 1
    cell, pbc = check_cell(cell, pbc, num_graphs)
    if cell is None:
        return radius_graph(pos, cutoff, batch), None
    return periodic_radius_graph(pos, cutoff, cell, pbc, batch)


def check_geometry(z: Tensor, pos: Tensor, cell: Optional[Tensor] = None,
                   pbc: Optional[Tensor] = None,
                   batch: Optional[Tensor] = None,
                   num_graphs: Optional[int] = None,
                   min_distance: float = MIN_DISTANCE,
                   max_z: int = MAX_Z) -> None:
    r"""Checks structures as a model would before computing on them:
    atomic numbers and finite positions (:func:`check_structure`), the
    cell (shapes, finite, not singular along its periodic directions) and
    overlapping atoms (two atoms, or an atom and a periodic image, closer
    than :obj:`min_distance` Å), all without a model.

    Raises:
        ValueError: naming the problem (and the atoms or the graph).
    """
    check_structure(z, pos, batch, max_z)
    if batch is None:
        batch = torch.zeros(z.numel(), dtype=torch.long, device=z.device)
    edge_index, offsets = build_graph(pos, min_distance, batch, cell, pbc,
                                      num_graphs)
    if edge_index.size(1) == 0:
        return
    j, i = edge_index[0], edge_index[1]
    vec = pos[j] - pos[i]
    if offsets is not None:
        cell, _ = check_cell(cell, pbc, int(batch.max()) + 1
                             if num_graphs is None else num_graphs)
        vec = vec + torch.einsum('ek,ekl->el', offsets.to(pos.dtype),
                                 cell.to(pos.dtype)[batch[i]])
    check_distances(edge_index, vec.norm(dim=-1), min_distance)
