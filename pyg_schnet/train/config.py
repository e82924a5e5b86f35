"""The training configuration: defaults, YAML files, and the resolved copy
saved with every run."""
import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Optional

import yaml

from pyg_schnet.data.atomic import atomic_write_text


def default_data_root() -> str:
    r"""Where datasets are processed and cached: :obj:`$PYG_SCHNET_DATA`,
    else :obj:`~/.cache/pyg_schnet`."""
    return os.environ.get('PYG_SCHNET_DATA',
                          str(Path.home() / '.cache' / 'pyg_schnet'))


@dataclass
class TrainConfig:
    r"""Everything a training run depends on. The defaults are the README's
    main job: SchNet on QM9 :math:`U_0` with 1,000 training molecules on a
    CPU. Units: energies in eV, forces in eV/Å, cutoff in Å, time in
    minutes."""
    # data
    dataset: str = 'qm9'  #: 'qm9' or an ASE-readable file
    target: Optional[str] = None  #: default: U0 (QM9), energy (files)
    root: str = field(default_factory=default_data_root)
    max_molecules: Optional[int] = None  #: first N structures only
    n_train: int = 1000
    n_val: int = 1000
    n_test: Optional[int] = 10000  #: None: all the rest
    split_file: Optional[str] = None  #: a split.pt to reuse instead
    readout: Optional[str] = None  #: sum | mean; default per target
    atomref: str = 'auto'  #: auto | dataset | fit | none
    forces: bool = True  #: train on forces when the data has them
    # model
    model: str = 'schnet'
    features: Optional[int] = None  #: atom features (H=F for SchNet)
    interactions: Optional[int] = None
    cutoff: Optional[float] = None  #: Å
    model_kwargs: Dict[str, Any] = field(default_factory=dict)
    # optimisation
    epochs: int = 200
    max_time: Optional[float] = 11.0  #: minutes of training at most
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 0.0
    lr_factor: float = 0.5
    lr_patience: int = 10
    min_lr: float = 1e-6
    early_stopping: int = 30  #: epochs without improvement
    grad_clip: Optional[float] = 10.0
    ema_decay: Optional[float] = 0.99  #: None: no weight averaging
    rho: float = 0.01  #: energy weight with forces
    seed: int = 0
    # hardware
    device: str = 'auto'  #: auto | cpu | cuda
    devices: int = 1  #: processes (GPUs) per node; >1 runs DDP
    num_nodes: int = 1
    strategy: str = 'auto'
    num_workers: int = 0
    # output
    run_dir: str = 'runs/latest'
    progress: bool = True

    def __post_init__(self):
        choices = {'readout': (None, 'sum', 'mean'),
                   'atomref': ('auto', 'dataset', 'fit', 'none'),
                   'device': ('auto', 'cpu', 'cuda', 'gpu')}
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of "
                                 f"{[a for a in allowed if a]}, got "
                                 f"{getattr(self, name)!r}")

    def model_arguments(self) -> Dict[str, Any]:
        r"""Keyword arguments of the model's constructor from the generic
        size options and :attr:`model_kwargs`."""
        kwargs: Dict[str, Any] = {}
        name = self.model.lower()
        if self.features is not None:
            if name == 'schnet':
                kwargs.update(hidden_channels=self.features,
                              num_filters=self.features)
            else:
                kwargs['channels'] = self.features
        if self.interactions is not None:
            kwargs['num_interactions'] = self.interactions
        if self.cutoff is not None:
            kwargs['cutoff'] = self.cutoff
        kwargs.update(self.model_kwargs)
        return kwargs

    def to_dict(self) -> Dict[str, Any]:
        return dataclasses.asdict(self)

    def save(self, path: os.PathLike) -> None:
        atomic_write_text(path, yaml.safe_dump(self.to_dict(),
                                               sort_keys=False))

    @classmethod
    def from_dict(cls, values: Dict[str, Any]) -> 'TrainConfig':
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise ValueError(f'unknown configuration keys: {sorted(unknown)}')
        return cls(**values)

    @classmethod
    def load(cls, path: os.PathLike) -> 'TrainConfig':
        with open(path) as f:
            values = yaml.safe_load(f) or {}
        if not isinstance(values, dict):
            raise ValueError(f'{path} does not hold a mapping of options')
        return cls.from_dict(values)
