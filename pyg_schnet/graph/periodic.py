"""Radius graphs under periodic boundary conditions (crystals, slabs).

Sign convention (the same as :func:`ase.neighborlist.neighbor_list`): an
edge ``(j, i)`` with integer image shift :math:`\\mathbf{S}_{ij}` stands for
the vector from the centre atom :math:`i` to the image of atom :math:`j`

.. math::
    \\mathbf{r}_{ij} = \\mathbf{p}_j - \\mathbf{p}_i + \\mathbf{S}_{ij}
    \\mathbf{C},

where :math:`\\mathbf{C}` holds the cell vectors as rows (Å) and
:math:`\\mathbf{S}_{ij}` is the row of :obj:`cell_offsets` of that edge.
"""
from typing import Optional, Tuple

import torch
from torch import Tensor

# Bins are made wider than the cutoff by this relative margin, so rounding
# in fractional coordinates can never move a neighbour out of the stencil.
_MARGIN = 1e-6

# More neighbouring bins than this per atom means a pathological cell
# (lattice planes far closer than the cutoff); refuse it rather than
# exhaust memory.
_MAX_STENCIL = 100_000


def complete_cell(cell: Tensor, pbc: Tensor) -> Tensor:
    r"""Replaces the cell vectors of non-periodic directions by unit vectors
    orthogonal to the periodic ones, giving a non-singular basis.

    Non-periodic vectors never enter an edge vector (their image shift is
    always 0), so this changes no distance; it only lets fractional
    coordinates be defined for molecules, wires and slabs whose cell has
    zero rows there.

    Args:
        cell (torch.Tensor): Cells :obj:`[B, 3, 3]`, row vectors in Å.
        pbc (torch.Tensor): Periodic flags :obj:`[B, 3]`.

    Raises:
        ValueError: if the periodic vectors of a cell are zero or linearly
            dependent (singular cell).
    """
    periodic = cell * pbc.unsqueeze(-1)
    _, _, vh = torch.linalg.svd(periodic)
    num_periodic = pbc.sum(dim=1, keepdim=True)
    # The j-th non-periodic axis takes the j-th right singular vector that
    # lies outside the span of the periodic vectors.
    rank = torch.cumsum(~pbc, dim=1) - 1
    row = (num_periodic + rank).clamp(max=2)
    complement = torch.gather(vh, 1, row.unsqueeze(-1).expand(-1, -1, 3))
    basis = torch.where(pbc.unsqueeze(-1), cell, complement)

    norms = basis.norm(dim=-1).prod(dim=-1)
    volume = torch.linalg.det(basis).abs()
    singular = (norms <= 1e-12) | (volume <= 1e-8 * norms)
    if bool(singular.any()):
        b = int(singular.nonzero()[0])
        raise ValueError(
            f'singular cell in graph {b}: its periodic cell vectors '
            f'{cell[b][pbc[b]].tolist()} (Å) are zero or linearly dependent')
    return basis


def periodic_radius_graph(
    pos: Tensor,
    cutoff: float,
    cell: Tensor,
    pbc: Tensor,
    batch: Optional[Tensor] = None,
    backend: str = 'auto',
) -> Tuple[Tensor, Tensor]:
    r"""All pairs :math:`(i, j, \mathbf{S})` with
    :math:`0 < |\mathbf{r}_{ij}| < r_c` in a batch of periodic structures.

    Two backends find the same pairs (tested against ASE):

    * :obj:`"vesin"`: the `vesin <https://github.com/Luthaf/vesin>`_
      library, one call per structure; 20-27x faster than the cell list
      on CPUs (``benchmarks/neighbors.py``). It returns integer indices and
      shifts only: distances, and so forces and stress, are computed from
      them by autograd in the model.
    * :obj:`"cells"`: a batched cell list in plain tensor code, which runs
      where the tensors are (GPU tensors stay on the GPU).

    :obj:`"auto"` takes vesin for CPU tensors when it is installed, the
    cell list otherwise.

    Args:
        pos (torch.Tensor): Positions :obj:`[N, 3]` in Å.
        cutoff (float): Cutoff radius :math:`r_c` in Å.
        cell (torch.Tensor): Cells :obj:`[B, 3, 3]`, row vectors in Å.
        pbc (torch.Tensor): Periodic flags :obj:`[B, 3]`.
        batch (torch.Tensor, optional): Sorted graph index per atom
            :obj:`[N]`. (default: all atoms in graph 0)
        backend (str, optional): :obj:`"auto"`, :obj:`"vesin"` or
            :obj:`"cells"`. (default: :obj:`"auto"`)

    Returns:
        :obj:`(edge_index, cell_offsets)`: :obj:`edge_index` :obj:`[2, E]`
        with row 0 the neighbour :math:`j` and row 1 the centre :math:`i`;
        :obj:`cell_offsets` :obj:`[E, 3]` integer image shifts
        :math:`\mathbf{S}_{ij}` with :math:`\mathbf{r}_{ij} = \mathbf{p}_j
        - \mathbf{p}_i + \mathbf{S}_{ij} \mathbf{C}`.
    """
    if not cutoff > 0:
        raise ValueError(f"'cutoff' must be positive (got {cutoff} Å)")
    if backend not in ('auto', 'vesin', 'cells'):
        raise ValueError(f"backend must be 'auto', 'vesin' or 'cells' (got "
                         f"{backend!r})")
    if backend == 'auto':
        backend = 'vesin' if pos.device.type == 'cpu' and \
            _vesin() is not None else 'cells'
    if backend == 'vesin':
        return _vesin_graph(pos, cutoff, cell, pbc, batch)
    return cell_list_graph(pos, cutoff, cell, pbc, batch)


def _vesin():
    try:
        from vesin import NeighborList
    except ImportError:
        return None
    return NeighborList


def _vesin_graph(pos: Tensor, cutoff: float, cell: Tensor, pbc: Tensor,
                 batch: Optional[Tensor]) -> Tuple[Tensor, Tensor]:
    import numpy as np

    NeighborList = _vesin()
    if NeighborList is None:
        raise ImportError("the 'vesin' backend needs the PyPI package "
                          "vesin (pip install vesin)")
    num_nodes = pos.size(0)
    if batch is None:
        batch = torch.zeros(num_nodes, dtype=torch.long, device=pos.device)
    pbc = pbc.to(torch.bool)
    basis = complete_cell(cell.detach().to(torch.float64), pbc)
    counts = torch.bincount(batch, minlength=cell.size(0)).tolist()
    points = pos.detach().to(torch.float64).cpu().numpy()
    boxes, flags = basis.cpu().numpy(), pbc.cpu().numpy()
    search = NeighborList(cutoff=float(cutoff), full_list=True)
    parts, start = [], 0
    for b, count in enumerate(counts):
        if count:
            # Views into vesin's buffers (valid until its next call):
            # converted to int64 (one copy) right away.
            i, j, S = search.compute(points[start:start + count], boxes[b],
                                     [bool(f) for f in flags[b]], 'ijS',
                                     copy=False)
            edges = np.empty((2, len(i)), dtype=np.int64)
            np.add(j, start, out=edges[0], casting='unsafe')
            np.add(i, start, out=edges[1], casting='unsafe')
            parts.append((edges, S.astype(np.int64)))
        start += count
    if len(parts) == 1:
        edge_index, offsets = parts[0]
    elif parts:
        edge_index = np.concatenate([p[0] for p in parts], axis=1)
        offsets = np.concatenate([p[1] for p in parts])
    else:
        edge_index = np.zeros((2, 0), dtype=np.int64)
        offsets = np.zeros((0, 3), dtype=np.int64)
    return (torch.from_numpy(edge_index).to(pos.device),
            torch.from_numpy(offsets).to(pos.device))


def cell_list_graph(
    pos: Tensor,
    cutoff: float,
    cell: Tensor,
    pbc: Tensor,
    batch: Optional[Tensor] = None,
) -> Tuple[Tensor, Tensor]:
    r"""All pairs :math:`(i, j, \mathbf{S})` with
    :math:`0 < |\mathbf{r}_{ij}| < r_c` in a batch of periodic structures.

    A cell list: each structure's space is cut into bins at least
    :math:`r_c` thick (measured perpendicular to the lattice planes, so
    triclinic cells are handled), and each atom is compared only with the
    atoms in the surrounding bins, including their periodic images. The
    cost is linear in the number of atoms (plus one sort); everything is
    batched tensor code, so it runs on GPU tensors too. Supports mixed
    periodicity (e.g. slabs with :obj:`pbc=[True, True, False]`), cutoffs
    larger than the cell (many images of the same atom, and of the atom
    itself), triclinic cells and atoms outside the cell. Non-periodic
    structures in the batch (all :obj:`pbc` false) are handled too.

    Args:
        pos (torch.Tensor): Positions :obj:`[N, 3]` in Å.
        cutoff (float): Cutoff radius :math:`r_c` in Å.
        cell (torch.Tensor): Cells :obj:`[B, 3, 3]`, row vectors in Å.
        pbc (torch.Tensor): Periodic flags :obj:`[B, 3]`.
        batch (torch.Tensor, optional): Sorted graph index per atom
            :obj:`[N]`. (default: all atoms in graph 0)

    Returns:
        :obj:`(edge_index, cell_offsets)`: :obj:`edge_index` :obj:`[2, E]`
        with row 0 the neighbour :math:`j` and row 1 the centre :math:`i`,
        sorted by centre; :obj:`cell_offsets` :obj:`[E, 3]` integer image
        shifts :math:`\mathbf{S}_{ij}` with
        :math:`\mathbf{r}_{ij} = \mathbf{p}_j - \mathbf{p}_i +
        \mathbf{S}_{ij} \mathbf{C}`.
    """
    if not cutoff > 0:
        raise ValueError(f"'cutoff' must be positive (got {cutoff} Å)")
    device = pos.device
    num_nodes = pos.size(0)
    if batch is None:
        batch = torch.zeros(num_nodes, dtype=torch.long, device=device)
    batch = batch.long()
    num_graphs = cell.size(0)
    pbc = pbc.to(torch.bool)
    # Integer bin arithmetic is exact; do the geometry in float64 too.
    pos = pos.detach().to(torch.float64)
    cell = cell.detach().to(torch.float64)

    basis = complete_cell(cell, pbc)
    inverse = torch.linalg.inv(basis)
    # Distance between lattice planes, h_k = 1 / |b_k| (b_k = column k of
    # the inverse): a sphere of radius r_c spans r_c / h_k in fractional
    # coordinate k.
    reach = cutoff * inverse.norm(dim=1) * (1.0 + _MARGIN)  # [B, 3]

    frac = torch.einsum('ni,nij->nj', pos, inverse[batch])
    atom_pbc = pbc[batch]
    wrap = torch.where(atom_pbc, torch.floor(frac), torch.zeros_like(frac))
    frac = frac - wrap

    # Periodic axes: nb = floor(1 / reach) bins of width 1 / nb >= reach
    # (one bin when the cell is thinner than the cutoff), and a stencil of
    # m = ceil(reach * nb) bins each way (m > 1 only for thin cells).
    # Non-periodic axes: bins of width reach from the lowest atom, m = 1.
    nb_per = torch.clamp(torch.floor(1.0 / reach), min=1.0)
    lowest = torch.full((num_graphs, 3), float('inf'), dtype=frac.dtype,
                        device=device)
    lowest = lowest.scatter_reduce(0, batch.unsqueeze(-1).expand(-1, 3),
                                   frac, reduce='amin', include_self=True)
    lowest = torch.where(torch.isfinite(lowest), lowest,
                         torch.zeros_like(lowest))
    scaled = torch.where(atom_pbc, frac * nb_per[batch],
                         (frac - lowest[batch]) / reach[batch])
    bins = torch.floor(scaled).long()
    nb_nonper = torch.zeros((num_graphs, 3), dtype=torch.long,
                            device=device)
    nb_nonper = nb_nonper.scatter_reduce(0, batch.unsqueeze(-1).expand(-1, 3),
                                         bins + 1, reduce='amax',
                                         include_self=True)
    num_bins = torch.where(pbc, nb_per.long(), nb_nonper.clamp(min=1))
    bins = torch.minimum(bins.clamp(min=0), num_bins[batch] - 1)
    stencil = torch.where(pbc, torch.ceil(reach * nb_per).long(),
                          torch.ones_like(num_bins))

    bins_per_graph = num_bins.prod(dim=1)
    if float(bins_per_graph.double().sum()) > 2.0**62:
        raise ValueError('structures too sparse for the cell list: the '
                         'atoms of a non-periodic direction span more than '
                         '~1e6 cutoff radii')
    graph_offset = torch.cumsum(bins_per_graph, 0) - bins_per_graph

    def bin_key(b: Tensor, coord: Tensor) -> Tensor:
        nb = num_bins[b]
        flat = (coord[:, 0] * nb[:, 1] + coord[:, 1]) * nb[:, 2] + coord[:, 2]
        return graph_offset[b] + flat

    keys, order = torch.sort(bin_key(batch, bins))

    # 1. Every atom against every bin of its stencil.
    width = 2 * stencil + 1
    stencil_size = width.prod(dim=1)
    if num_nodes and int(stencil_size[batch].max()) > _MAX_STENCIL:
        b = int(batch[int(stencil_size[batch].argmax())])
        raise ValueError(
            f'graph {b}: the cutoff of {cutoff} Å spans '
            f'{int(stencil_size[b])} bins of its cell (plane spacings '
            f'{(cutoff / reach[b] * (1 + _MARGIN)).tolist()} Å); the cell is '
            f'extremely skewed or tiny. Reduce it first, e.g. with '
            f'ase.geometry.minkowski_reduce')
    per_atom = stencil_size[batch]
    centre = torch.repeat_interleave(
        torch.arange(num_nodes, device=device), per_atom)
    t = torch.arange(centre.numel(), device=device) - \
        (torch.cumsum(per_atom, 0) - per_atom)[centre]
    b = batch[centre]
    w, m = width[b], stencil[b]
    delta = torch.stack([t // (w[:, 1] * w[:, 2]),
                         (t // w[:, 2]) % w[:, 1], t % w[:, 2]], dim=1) - m
    target = bins[centre] + delta
    nb = num_bins[b]
    periodic = pbc[b]
    shift = torch.where(periodic, torch.div(target, nb, rounding_mode='floor'),
                        torch.zeros_like(target))
    target = torch.where(periodic, torch.remainder(target, nb), target)
    inside = ((target >= 0) & (target < nb)).all(dim=1)
    centre, target, shift, b = centre[inside], target[inside], \
        shift[inside], b[inside]
    key = bin_key(b, target)
    start = torch.searchsorted(keys, key, right=False)
    count = torch.searchsorted(keys, key, right=True) - start

    # 2. Every (atom, neighbouring bin) against the atoms in that bin.
    pair = torch.repeat_interleave(
        torch.arange(key.numel(), device=device), count)
    u = torch.arange(pair.numel(), device=device) - \
        (torch.cumsum(count, 0) - count)[pair]
    j = order[start[pair] + u]
    i = centre[pair]
    shift = shift[pair]
    b = b[pair]

    frac_vec = frac[j] - frac[i] + shift.to(frac.dtype)
    dist = torch.einsum('ei,eij->ej', frac_vec, basis[b]).norm(dim=-1)
    self_image = (i == j) & (shift == 0).all(dim=1)
    keep = (dist < cutoff) & ~self_image
    i, j, shift = i[keep], j[keep], shift[keep]
    # Shifts of the wrapped positions, converted to the input positions.
    cell_offsets = shift + (wrap[i] - wrap[j]).long()

    perm = torch.sort(i * num_nodes + j, stable=True)[1]
    edge_index = torch.stack([j[perm], i[perm]], dim=0)
    return edge_index, cell_offsets[perm]
