"""Neighbour lists for dynamics: built with a skin and reused while no atom
has moved far enough to change them."""
from typing import Optional, Tuple

import torch
from torch import Tensor

from pyg_schnet.graph import build_graph, canonical_mask, check_cell


class VerletGraph:
    r"""A radius graph at :math:`r_c + r_s` (cutoff plus skin), rebuilt
    only when needed, each pair listed once.

    Between rebuilds no atom moves more than :math:`r_s/2`, so no pair can
    come closer than :math:`r_c` without being in the list: the energies and
    forces are the same as on a fresh graph (the models mask every pair at
    :math:`d \geq r_c`). The graph is rebuilt when an atom has moved more
    than :math:`r_s/2` since the last build, or when the atoms, their
    grouping into structures, the cell or the periodic flags change.

    Args:
        cutoff (float): The model's cutoff :math:`r_c` in Å.
        skin (float, optional): The skin :math:`r_s` in Å.
            (default: :obj:`0.5`)

    Call it with :obj:`(z, pos, batch, num_graphs, cell, pbc)` (positions
    in Å, cells :obj:`[B, 3, 3]` in Å or :obj:`None`) to get
    :obj:`(edge_index, cell_offsets)` with each unordered pair once, for
    :meth:`~pyg_schnet.models.AtomisticModel.evaluate` with
    :obj:`symmetric=True`. :attr:`builds` counts the rebuilds.
    """
    def __init__(self, cutoff: float, skin: float = 0.5):
        if not cutoff > 0:
            raise ValueError(f"'cutoff' must be positive (got {cutoff} Å)")
        if not skin >= 0:
            raise ValueError(f"'skin' must not be negative (got {skin} Å)")
        self.cutoff = float(cutoff)
        self.skin = float(skin)
        self.builds = 0
        self._key: Optional[tuple] = None
        self._pos: Optional[Tensor] = None
        self._graph: Optional[Tuple[Tensor, Optional[Tensor]]] = None

    def __call__(self, z: Tensor, pos: Tensor, batch: Tensor,
                 num_graphs: int, cell: Optional[Tensor] = None,
                 pbc: Optional[Tensor] = None
                 ) -> Tuple[Tensor, Optional[Tensor]]:
        cell, pbc = check_cell(cell, pbc, num_graphs)
        pos = pos.detach()
        if self._stale(z, pos, batch, cell, pbc):
            edge_index, offsets = build_graph(
                pos, self.cutoff + self.skin, batch, cell, pbc, num_graphs)
            half = canonical_mask(edge_index, offsets).nonzero().view(-1)
            self._graph = (edge_index.index_select(1, half),
                           None if offsets is None else
                           offsets.index_select(0, half))
            self._pos = pos.clone()
            self._key = self._identity(z, batch, cell, pbc)
            self.builds += 1
        return self._graph

    @staticmethod
    def _identity(z, batch, cell, pbc) -> tuple:
        return (z.clone(), batch.clone(),
                None if cell is None else cell.detach().clone(),
                None if pbc is None else pbc.clone())

    def _stale(self, z, pos, batch, cell, pbc) -> bool:
        if self._key is None or self._pos is None or \
                self._pos.shape != pos.shape:
            return True
        old_z, old_batch, old_cell, old_pbc = self._key
        if not (torch.equal(old_z, z) and torch.equal(old_batch, batch)):
            return True
        if (old_cell is None) != (cell is None):
            return True
        if cell is not None and not (torch.equal(old_cell, cell.detach())
                                     and torch.equal(old_pbc, pbc)):
            return True
        moved = (pos - self._pos).norm(dim=-1).max()
        return bool(moved > 0.5 * self.skin)
