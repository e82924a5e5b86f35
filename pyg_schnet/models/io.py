"""Saving and loading trained models: a state dict and a dictionary of
hyper-parameters, loadable with ``torch.load(..., weights_only=True)``."""
import os
from typing import Any, Dict, Optional, Tuple, Type, Union

import torch

from pyg_schnet.io import (
    CorruptFileError,
    atomic_torch_save,
    safe_load,
    safe_load_bytes,
)
from pyg_schnet.models.dtnn import DTNN
from pyg_schnet.models.potential import AtomisticModel
from pyg_schnet.models.schnet import SchNet

#: Model classes by the name used in configs, files and the CLI.
MODELS: Dict[str, Type[AtomisticModel]] = {'schnet': SchNet, 'dtnn': DTNN}

_FORMAT = 'pyg_schnet.model/1'


def model_name(model: AtomisticModel) -> str:
    for name, cls in MODELS.items():
        if type(model) is cls:
            return name
    raise ValueError(f'unknown model class {type(model).__name__}')


def build_model(name: str, **kwargs: Any) -> AtomisticModel:
    r"""A fresh model by name (:obj:`"schnet"` or :obj:`"dtnn"`)."""
    if name.lower() not in MODELS:
        raise ValueError(f"unknown model '{name}' (choose from "
                         f"{sorted(MODELS)})")
    return MODELS[name.lower()](**kwargs)


def save_model(model: AtomisticModel, path: Union[str, os.PathLike],
               metadata: Optional[Dict[str, Any]] = None) -> None:
    r"""Writes :obj:`model` to :obj:`path`, atomically: its class name,
    :attr:`~AtomisticModel.config`, :meth:`state_dict` (weights, reference
    energies, mean and std), the elements it was trained on (when
    recorded) and optional JSON-like :obj:`metadata` (e.g. the target and
    its unit). No pickled code: the file loads with
    :obj:`torch.load(path, weights_only=True)`."""
    atomic_torch_save(_blob(model, metadata), path)


def _blob(model: AtomisticModel,
          metadata: Optional[Dict[str, Any]]) -> Dict[str, Any]:
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    elements = model.trained_elements
    return {'format': _FORMAT, 'model': model_name(model),
            'config': model.config, 'state_dict': state,
            'elements': None if elements is None
            else [int(z) for z in elements],
            'metadata': dict(metadata or {})}


def model_to_bytes(model: AtomisticModel,
                   metadata: Optional[Dict[str, Any]] = None) -> bytes:
    r"""The bytes :func:`save_model` would write (for containers that hold
    a model inside another file, e.g. the LAMMPS model)."""
    import io
    buffer = io.BytesIO()
    torch.save(_blob(model, metadata), buffer)
    return buffer.getvalue()


def model_from_bytes(data: bytes, where: str = 'model bytes',
                     map_location: Union[str, torch.device] = 'cpu'
                     ) -> Tuple[AtomisticModel, Dict[str, Any]]:
    r"""The inverse of :func:`model_to_bytes`, with :func:`load_model`'s
    checks (:obj:`weights_only=True`)."""
    blob = safe_load_bytes(data, where, 'pyg_schnet model', map_location)
    return _from_blob(blob, where, map_location)


def load_model(path: Union[str, os.PathLike],
               map_location: Union[str, torch.device] = 'cpu'
               ) -> Tuple[AtomisticModel, Dict[str, Any]]:
    r"""Loads a model written by :func:`save_model` (with
    :obj:`weights_only=True`: a file holding anything but tensors and
    plain data is refused, nothing in it is executed). Returns
    :obj:`(model, metadata)`, the model in evaluation mode.

    Raises:
        FileNotFoundError: if there is no file at :obj:`path`.
        ValueError: if the file is not a pyg_schnet model, is truncated or
            corrupt, or its weights do not fit its configuration.
    """
    blob = safe_load(path, 'pyg_schnet model file', map_location)
    return _from_blob(blob, path, map_location)


def _from_blob(blob: Any, path: Union[str, os.PathLike],
               map_location: Union[str, torch.device]
               ) -> Tuple[AtomisticModel, Dict[str, Any]]:
    if not isinstance(blob, dict) or blob.get('format') != _FORMAT:
        raise CorruptFileError(f'{path} is not a pyg_schnet model file')
    if blob.get('model') not in MODELS:
        raise CorruptFileError(f"{path}: unknown model class "
                               f"{blob.get('model')!r} (known: "
                               f'{sorted(MODELS)})')
    config, state = blob.get('config'), blob.get('state_dict')
    if not isinstance(config, dict) or not isinstance(state, dict):
        raise CorruptFileError(f'{path} lacks the model configuration or '
                               f'weights')
    try:
        model = MODELS[blob['model']].from_config(config)
    except (TypeError, ValueError) as e:
        raise CorruptFileError(f'{path}: the saved configuration does not '
                               f'build a model: {e}') from None
    try:
        model.load_state_dict(state)
    except RuntimeError as e:
        first = str(e).splitlines()[0]
        raise CorruptFileError(f'{path}: the weights do not fit the saved '
                               f'configuration ({first} ...)') from None
    elements = blob.get('elements')
    if elements is not None:
        model.trained_elements = [int(z) for z in elements]
    return model.to(map_location).eval(), dict(blob.get('metadata') or {})
