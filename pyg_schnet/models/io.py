"""Saving and loading trained models: a state dict and a dictionary of
hyper-parameters, loadable with ``torch.load(..., weights_only=True)``."""
import os
from typing import Any, Dict, Optional, Tuple, Type, Union

import torch

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
    energies, mean and std) and optional JSON-like :obj:`metadata` (e.g. the
    target and its unit). No pickled code: the file loads with
    :obj:`torch.load(path, weights_only=True)`."""
    from pyg_schnet.data.atomic import atomic_torch_save

    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    atomic_torch_save({'format': _FORMAT, 'model': model_name(model),
                       'config': model.config, 'state_dict': state,
                       'metadata': dict(metadata or {})}, path)


def load_model(path: Union[str, os.PathLike],
               map_location: Union[str, torch.device] = 'cpu'
               ) -> Tuple[AtomisticModel, Dict[str, Any]]:
    r"""Loads a model written by :func:`save_model` (with
    :obj:`weights_only=True`). Returns :obj:`(model, metadata)`, the model
    in evaluation mode."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f'no model file at {path}')
    blob = torch.load(path, map_location=map_location, weights_only=True)
    if not isinstance(blob, dict) or blob.get('format') != _FORMAT:
        raise ValueError(f'{path} is not a pyg_schnet model file')
    cls = MODELS[blob['model']]
    model = cls.from_config(blob['config'])
    model.load_state_dict(blob['state_dict'])
    return model.to(map_location).eval(), blob.get('metadata', {})
