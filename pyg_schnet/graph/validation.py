"""Checks of atomistic inputs that turn bad data into clear errors.

Every structure that enters a model or a graph builder passes through
:func:`check_structure`, so a NaN position, an unknown element or a cell of
the wrong shape raises a :class:`ValueError` naming the problem instead of
producing NaN energies downstream.
"""
from typing import Optional, Tuple

import torch
from torch import Tensor

#: Largest atomic number the models embed (fermium).
MAX_Z = 100

#: Two atoms closer than this (Å) are reported as overlapping.
MIN_DISTANCE = 0.1


def _describe(t: Tensor) -> str:
    return f'shape {list(t.shape)} and dtype {t.dtype}'


def check_batch(batch: Tensor, num_nodes: int) -> None:
    r"""Checks that :obj:`batch` is a sorted :obj:`[N]` integer vector."""
    if batch.dim() != 1 or batch.numel() != num_nodes:
        raise ValueError(f"'batch' must have shape [{num_nodes}] (one graph "
                         f"index per atom), got {_describe(batch)}")
    if batch.dtype not in (torch.long, torch.int32):
        raise ValueError(f"'batch' must hold integers, got {batch.dtype}")
    if num_nodes > 1 and bool((batch[1:] < batch[:-1]).any()):
        raise ValueError("'batch' is not sorted: atoms of one graph must be "
                         "contiguous and graphs in increasing order (as "
                         "torch_geometric.data.Batch builds it)")
    if num_nodes > 0 and int(batch[0]) < 0:
        raise ValueError("'batch' holds negative graph indices")


def check_structure(z: Tensor, pos: Tensor, batch: Optional[Tensor] = None,
                    max_z: int = MAX_Z) -> None:
    r"""Checks atomic numbers, positions and the batch vector.

    Args:
        z (torch.Tensor): Atomic numbers :obj:`[N]`, integers in
            :obj:`1..max_z`.
        pos (torch.Tensor): Positions :obj:`[N, 3]` in Å, finite.
        batch (torch.Tensor, optional): Sorted graph index per atom
            :obj:`[N]`.
        max_z (int, optional): Largest allowed atomic number.

    Raises:
        ValueError: naming the first problem found.
    """
    if z.dim() != 1:
        raise ValueError(f"'z' must have shape [num_atoms], got "
                         f"{_describe(z)}")
    if z.dtype not in (torch.long, torch.int32):
        raise ValueError(f"'z' must hold atomic numbers as torch.long "
                         f"(int64) or torch.int32, got {z.dtype} (use "
                         f"z.long())")
    if pos.dim() != 2 or pos.size(-1) != 3:
        raise ValueError(f"'pos' must have shape [num_atoms, 3] (Å), got "
                         f"{_describe(pos)}")
    if not pos.is_floating_point():
        raise ValueError(f"'pos' must be floating point (Å), got {pos.dtype}")
    if pos.size(0) != z.numel():
        raise ValueError(f"'z' has {z.numel()} atoms but 'pos' has "
                         f"{pos.size(0)}")
    if z.numel() == 0:
        raise ValueError('the structure has no atoms')
    bad = (z < 1) | (z > max_z)
    if bool(bad.any()):
        idx = int(bad.nonzero()[0])
        raise ValueError(f'unknown element: atom {idx} has atomic number '
                         f'{int(z[idx])} (allowed: 1..{max_z})')
    finite = torch.isfinite(pos).all(dim=-1)
    if not bool(finite.all()):
        idx = int((~finite).nonzero()[0])
        raise ValueError(f"'pos' of atom {idx} is not finite "
                         f"({pos[idx].tolist()})")
    if batch is not None:
        check_batch(batch, z.numel())


def check_cell(cell: Optional[Tensor], pbc: Optional[Tensor],
               num_graphs: int) -> Tuple[Optional[Tensor], Optional[Tensor]]:
    r"""Checks and normalises a cell and its periodic flags.

    Accepts :obj:`cell` as :obj:`[B, 3, 3]` (row vectors, Å) and :obj:`pbc`
    as :obj:`[B, 3]` booleans; for a single structure :obj:`[3, 3]` and
    :obj:`[3]` are accepted too. Returns :obj:`(None, None)` for molecules
    (no cell, or an all-zero cell with no periodic direction).

    Raises:
        ValueError: for shapes that do not match :obj:`num_graphs`, a
            non-finite cell, :obj:`pbc` without a cell or a non-zero cell
            without :obj:`pbc`.
    """
    if cell is None:
        if pbc is not None and bool(pbc.any()):
            raise ValueError("'pbc' is set but the structure has no 'cell'")
        return None, None
    if cell.dim() == 2 and num_graphs == 1:
        cell = cell.unsqueeze(0)
    if cell.dim() != 3 or cell.shape[1:] != (3, 3) or \
            cell.size(0) != num_graphs:
        raise ValueError(f"'cell' must have shape [{num_graphs}, 3, 3] (one "
                         f"3x3 matrix of row vectors in Å per graph), got "
                         f"{_describe(cell)}")
    if not cell.is_floating_point():
        raise ValueError(f"'cell' must be floating point (Å), got "
                         f"{cell.dtype}")
    if not bool(torch.isfinite(cell).all()):
        raise ValueError("'cell' is not finite (NaN or inf entries)")
    if pbc is None:
        if bool((cell != 0).any()):
            raise ValueError("'cell' is set but 'pbc' is missing: give "
                             "'pbc' as [num_graphs, 3] booleans")
        return None, None
    if pbc.dim() == 1 and num_graphs == 1:
        pbc = pbc.unsqueeze(0)
    if pbc.shape != (num_graphs, 3):
        raise ValueError(f"'pbc' must have shape [{num_graphs}, 3], got "
                         f"{_describe(pbc)}")
    pbc = pbc.to(torch.bool)
    if not bool(pbc.any()) and not bool((cell != 0).any()):
        return None, None
    return cell, pbc


def check_distances(edge_index: Tensor, distances: Tensor,
                    min_distance: float = MIN_DISTANCE) -> None:
    r"""Raises if two atoms of an edge are closer than :obj:`min_distance`
    (Å): overlapping atoms give meaningless energies and NaN forces."""
    if distances.numel() == 0:
        return
    close = distances < min_distance
    if bool(close.any()):
        e = int(close.nonzero()[0])
        j, i = int(edge_index[0, e]), int(edge_index[1, e])
        raise ValueError(f'overlapping atoms: atoms {i} and {j} are '
                         f'{float(distances[e]):.3g} Å apart (minimum '
                         f'{min_distance} Å)')
