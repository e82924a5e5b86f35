"""One entry point that builds the graph of any structure: molecule or
(partly) periodic."""
from typing import Optional, Tuple

from torch import Tensor

from pyg_schnet.graph.periodic import periodic_radius_graph
from pyg_schnet.graph.radius import radius_graph
from pyg_schnet.graph.validation import check_cell


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
