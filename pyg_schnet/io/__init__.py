"""File safety shared by every layer of the package: atomic writes, safe
(code-free) loading and run-folder locks. Imports nothing of ours, so
``models``, ``data``, ``train``, ``md`` and ``interpret`` all import it
downward."""
from pyg_schnet.io.atomic import (
    DiskFullError,
    atomic_path,
    atomic_torch_save,
    atomic_write_csv,
    atomic_write_text,
    commit_file,
    disk_full_error,
)
from pyg_schnet.io.load import (
    CorruptFileError,
    UnsafeFileError,
    safe_load,
    safe_load_bytes,
)
from pyg_schnet.io.lock import RunLock, RunLockedError

__all__ = [
    'CorruptFileError',
    'DiskFullError',
    'RunLock',
    'RunLockedError',
    'UnsafeFileError',
    'atomic_path',
    'atomic_torch_save',
    'atomic_write_csv',
    'atomic_write_text',
    'commit_file',
    'disk_full_error',
    'safe_load',
    'safe_load_bytes',
]
