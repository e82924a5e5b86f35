"""Training: the loss, the Lightning module, runs and their files.

Only :mod:`pyg_schnet.train.module` and :func:`train` need Lightning; the
loss and the layers/models do not. Names are imported when first used, so
that ``pyg_schnet.train.config`` (what the command line needs to print its
help) loads without torch.
"""
import importlib
from typing import Any

_EXPORTS = {
    'EnergyForceLoss': 'pyg_schnet.train.loss',
    'TrainConfig': 'pyg_schnet.train.config',
    'evaluate_model': 'pyg_schnet.train.evaluate',
    'fit_atomref': 'pyg_schnet.train.datasets',
    'load_dataset': 'pyg_schnet.train.datasets',
    'resume_config': 'pyg_schnet.train.run',
    'summary': 'pyg_schnet.train.evaluate',
    'target_statistics': 'pyg_schnet.train.datasets',
    'train': 'pyg_schnet.train.run',
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')


def __dir__():
    return __all__
