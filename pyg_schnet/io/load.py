"""Loading torch files without running code from them.

``torch.load(..., weights_only=False)`` unpickles arbitrary objects, and a
crafted pickle runs its payload while being read. Every file this package
reads (models, checkpoints, splits, dataset caches) goes through
:func:`safe_load`, which uses ``weights_only=True`` (tensors, plain Python
data, and the PyG storage classes PyG registers as safe) and turns every
failure into an error naming the file.
"""
import os
import pickle
import zipfile
from typing import TYPE_CHECKING, Any, Union

if TYPE_CHECKING:  # pragma: no cover - torch is imported when loading
    import torch

PathLike = Union[str, os.PathLike]


class CorruptFileError(ValueError):
    r"""A file is truncated, empty, not a torch file, or not of the
    expected kind."""


class UnsafeFileError(CorruptFileError):
    r"""A file holds pickled Python objects beyond tensors and plain data:
    loading it fully could run code, so it is refused."""


def safe_load(path: PathLike, what: str = 'torch file',
              map_location: Union[str, 'torch.device', None] = 'cpu') -> Any:
    r"""Loads :obj:`path` with :obj:`torch.load(..., weights_only=True)`.

    Args:
        path (str): The file.
        what (str, optional): What the file should be, for messages
            (e.g. :obj:`"checkpoint"`).
        map_location (optional): As in :func:`torch.load`.

    Raises:
        FileNotFoundError: if there is no such file.
        UnsafeFileError: if the file holds objects that only a full
            (code-running) unpickling could restore; nothing is executed.
        CorruptFileError: if the file is empty, truncated or not a torch
            file.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f'no {what} at {path}')
    if os.path.getsize(path) == 0:
        raise CorruptFileError(f'{path} is empty: not a valid {what}')
    if not zipfile.is_zipfile(path):
        # torch.save writes zip archives; anything else is another kind of
        # file, a truncated one, or a bare pickle (never unpickled here).
        raise CorruptFileError(f'{path} is not a readable {what} (not a '
                               f'file written by torch.save: truncated, '
                               f'corrupt or another kind of file)')
    return _load(path, path, what, map_location)


def safe_load_bytes(data: bytes, where: str, what: str = 'torch file',
                    map_location: Union[str, 'torch.device', None] = 'cpu'
                    ) -> Any:
    r"""As :func:`safe_load`, for the bytes of such a file held inside
    another one (:obj:`where` names it in messages)."""
    import io
    if not isinstance(data, bytes) or not data:
        raise CorruptFileError(f'{where} holds no {what}')
    return _load(io.BytesIO(data), where, what, map_location)


def _load(source: Any, path: Any, what: str,
          map_location: Union[str, 'torch.device', None]) -> Any:
    try:
        import torch
        return torch.load(source, map_location=map_location,
                          weights_only=True)
    except pickle.UnpicklingError as e:
        message = str(e)
        if 'Weights only load failed' in message or 'GLOBAL' in message:
            detail = next((line.strip() for line in message.splitlines()
                           if 'Unsupported global' in line or
                           'GLOBAL' in line), '')
            raise UnsafeFileError(
                f'{path} was refused: it is not a plain {what} but holds '
                f'pickled Python objects that could run code when loaded'
                f'{f" ({detail})" if detail else ""}. pyg_schnet only loads '
                f'tensors and plain data (weights_only=True).') from None
        raise CorruptFileError(f'{path} is not a readable {what}: '
                               f'{message.splitlines()[0]}') from None
    except (RuntimeError, EOFError, OSError, zipfile.BadZipFile,
            ValueError, AttributeError, KeyError, IndexError) as e:
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise CorruptFileError(f'{path} is not a readable {what} '
                               f'(truncated, corrupt or another kind of '
                               f'file): {first}') from None
