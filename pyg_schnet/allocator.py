"""Memory-allocator settings that make large models fast on CPUs.

Each SchNet interaction creates and frees several ``[E, F]`` tensors
(hundreds of MB for thousands of atoms). glibc's ``malloc`` serves
allocations above ``M_MMAP_THRESHOLD`` with fresh ``mmap`` calls and returns
them to the kernel on ``free``, so every call pays for zeroed pages and page
faults again (measured: ~1 M page faults per energy + forces call at 3,000
atoms, and 2.3-3.5x slower calls at 3k-11k atoms than with the settings
below). :func:`tune_allocator` makes ``malloc`` keep such blocks in its heap
for reuse. The ``pyg-schnet`` command and the MD engine call it; library
users can call it once at start, or set ``MALLOC_MMAP_MAX_=0
MALLOC_TRIM_THRESHOLD_=17179869184`` in the environment (or preload
jemalloc/tcmalloc) before Python starts.
"""
import ctypes
import ctypes.util
import os
import sys

# glibc's mallopt parameters (malloc.h).
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4

_TUNED = False


def tune_allocator() -> bool:
    r"""Tells glibc's ``malloc`` to serve large blocks from its heap
    (``M_MMAP_MAX = 0``) and to keep freed memory for reuse instead of
    trimming it (``M_TRIM_THRESHOLD`` = 2 GiB). The process's memory then
    stays at its peak until exit, which is what a training or MD process
    reuses anyway.

    The price is memory: freed blocks stay in the heap and fragment it,
    so the peak resident size grows — on the reference path (training)
    1.3 GB → 3.1 GB for energy + forces of an 8,788-atom crystal
    (``benchmarks/memory.py``) while the call gets 2.5x faster (11k
    atoms); on the fused path (inference, MD) +0–9 % up to 62,500 Cu atoms
    and +23 % at 97,556 (4.48 against 3.63 GB, 1.75x faster;
    ``benchmarks/scaling.py``). Set ``PYG_SCHNET_TUNE_MALLOC=0`` to
    keep glibc's defaults where memory is the tighter limit.

    Returns:
        :obj:`True` if the settings were applied, :obj:`False` where they
        cannot be (not Linux/glibc, or turned off by the environment),
        which changes nothing else.
    """
    global _TUNED
    if _TUNED:
        return True
    if not sys.platform.startswith('linux') or \
            os.environ.get('PYG_SCHNET_TUNE_MALLOC', '1') == '0':
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library('c') or 'libc.so.6')
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    ok = mallopt(_M_MMAP_MAX, 0) == 1
    ok &= mallopt(_M_TRIM_THRESHOLD, 2**31 - 1) == 1
    _TUNED = bool(ok)
    return _TUNED
