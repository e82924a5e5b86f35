"""Training: the loss, the Lightning module, runs and their files.

Only :mod:`pyg_schnet.train.module` and :func:`train` need Lightning; the
loss and the layers/models do not.
"""
from pyg_schnet.train.config import TrainConfig
from pyg_schnet.train.datasets import (
    fit_atomref,
    load_dataset,
    target_statistics,
)
from pyg_schnet.train.evaluate import evaluate_model, summary
from pyg_schnet.train.loss import EnergyForceLoss
from pyg_schnet.train.run import resume_config, train

__all__ = [
    'EnergyForceLoss',
    'TrainConfig',
    'evaluate_model',
    'fit_atomref',
    'load_dataset',
    'resume_config',
    'summary',
    'target_statistics',
    'train',
]
