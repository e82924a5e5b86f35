r"""How much memory a model call needs, estimated before anything is
allocated, so that a batch too large for the machine (many MD beads or
systems, a huge probe grid) is refused with the number instead of being
killed by the kernel."""
import os
from typing import Optional, Union

import torch

#: Floats kept per pair and pass feature: the filter's pre-activation,
#: activation and value, and the message (calibrated against measured peak
#: memory, ``benchmarks/memory.py``; see :func:`memory_estimate`).
_PAIR_COPIES = 4
#: Transient pair-sized temporaries of one pass during the backward.
_PAIR_TRANSIENT = 3
#: Floats kept per atom and atom feature in every pass.
_ATOM_COPIES = 8


def memory_estimate(model: torch.nn.Module, num_atoms: int, num_pairs: int,
                    dtype: torch.dtype = torch.float32,
                    forces: bool = True) -> Optional[int]:
    r"""The peak memory in bytes of one energy (+ forces) call of
    :obj:`model` on :obj:`num_atoms` atoms and :obj:`num_pairs` pairs
    (each unordered pair once, as the MD engines list them), or
    :obj:`None` for a model that does not describe its sizes
    (:meth:`~pyg_schnet.models.AtomisticModel.memory_widths`).

    .. math::
        M \approx s\,\Big[P\big(K + \textstyle\sum_t (c_P F_t) + c_T
        \max_t F_t\big) + N\,c_N \sum_t H\Big]

    with :math:`s` the bytes of :obj:`dtype`, :math:`K` the radial basis
    size, :math:`F_t` the pair features of pass :math:`t`, :math:`H` the
    atom features; :math:`c_P = 4`, :math:`c_T = 3`, :math:`c_N = 8`
    (energy only: one pass's pair features at a time). An estimate for
    refusing what cannot fit, not a promise: graphs above :math:`2^{24}`
    filter elements recompute filters in the backward and need less.
    """
    widths = getattr(model, 'memory_widths', None)
    if widths is None:
        return None
    basis, pair_features, atom_features = widths()
    size = torch.finfo(dtype).bits // 8
    if forces:
        per_pair = basis + _PAIR_COPIES * sum(pair_features) + \
            _PAIR_TRANSIENT * max(pair_features, default=0)
        per_atom = _ATOM_COPIES * atom_features * max(len(pair_features), 1)
    else:
        per_pair = basis + (_PAIR_TRANSIENT + 1) * max(pair_features,
                                                       default=0)
        per_atom = 3 * atom_features
    return int(size * (num_pairs * per_pair + num_atoms * per_atom))


def available_memory(device: Union[str, torch.device] = 'cpu'
                     ) -> Optional[int]:
    r"""Bytes that can be allocated now: the GPU's free memory, or on a
    CPU the kernel's ``MemAvailable`` (Linux; :obj:`None` elsewhere)."""
    device = torch.device(device)
    if device.type == 'cuda':
        return int(torch.cuda.mem_get_info(device)[0])
    try:
        with open('/proc/meminfo') as f:
            for line in f:
                if line.startswith('MemAvailable:'):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def check_memory(model: torch.nn.Module, num_atoms: int, num_pairs: int,
                 dtype: torch.dtype = torch.float32,
                 device: Union[str, torch.device] = 'cpu',
                 what: str = 'the batch', forces: bool = True) -> None:
    r"""Raises a :class:`MemoryError` naming :obj:`what`, the estimate
    (:func:`memory_estimate`) and the memory available when the call
    would not fit. ``PYG_SCHNET_MEMORY_LIMIT_GB`` sets a lower limit than
    the machine's (e.g. on a shared node)."""
    need = memory_estimate(model, num_atoms, num_pairs, dtype, forces)
    if need is None:
        return
    have = available_memory(device)
    limit = os.environ.get('PYG_SCHNET_MEMORY_LIMIT_GB')
    if limit:
        try:
            cap = int(float(limit) * 1e9)
        except ValueError:
            raise ValueError(f'PYG_SCHNET_MEMORY_LIMIT_GB must be a number '
                             f'of GB (got {limit!r})') from None
        have = cap if have is None else min(have, cap)
    if have is not None and need > have:
        raise MemoryError(
            f'{what} ({num_atoms:,} atoms, {num_pairs:,} pairs) would need '
            f'about {need / 1e9:.1f} GB for energies and forces, but '
            f'{have / 1e9:.1f} GB are available: make it smaller')
