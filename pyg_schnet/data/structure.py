"""The one constructor of atomistic :class:`Data` objects that every loader
uses, so that every structure carries the same fields."""
from typing import Optional

import torch
from torch import Tensor
from torch_geometric.data import Data

from pyg_schnet.graph import check_cell, check_structure


def atomistic_data(z: Tensor, pos: Tensor, cell: Optional[Tensor] = None,
                   pbc: Optional[Tensor] = None, **fields) -> Data:
    r"""A checked :class:`Data` with :obj:`z` :obj:`[N]` (long),
    :obj:`pos` :obj:`[N, 3]` (Å), :obj:`cell` :obj:`[1, 3, 3]` (row
    vectors, Å) and :obj:`pbc` :obj:`[1, 3]` (bool), plus :obj:`fields`.

    Molecules get an all-zero :obj:`cell` and all-False :obj:`pbc`, never
    *no* cell: PyG collates the fields of a batch's first element, so a
    molecule without :obj:`cell` batched before a crystal would silently
    drop the crystal's cell. With every structure carrying both fields,
    molecules and crystals batch together in any order.

    Raises:
        ValueError: for unknown elements, non-finite positions or cells,
            or wrong shapes.
    """
    check_structure(z, pos)
    if cell is None:
        cell = torch.zeros((1, 3, 3), dtype=pos.dtype)
    if pbc is None:
        pbc = torch.zeros((1, 3), dtype=torch.bool)
    cell = torch.as_tensor(cell, dtype=pos.dtype).reshape(1, 3, 3) \
        if torch.as_tensor(cell).numel() == 9 else torch.as_tensor(cell)
    pbc = torch.as_tensor(pbc, dtype=torch.bool)
    pbc = pbc.reshape(1, 3) if pbc.numel() == 3 else pbc
    check_cell(cell, pbc, 1)
    return Data(z=z, pos=pos, cell=cell, pbc=pbc, **fields)
