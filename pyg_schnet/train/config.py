"""The training configuration: defaults, YAML files, and the resolved copy
saved with every run."""
import dataclasses
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Union

import yaml

from pyg_schnet.io import CorruptFileError, atomic_write_text

#: A split size: a count (int >= 1), a fraction (0 < float < 1), None for
#: the dataset's default, or (test set only) 'rest'.
SplitSize = Union[int, float, str, None]


def default_data_root() -> str:
    r"""Where datasets are processed and cached: :obj:`$PYG_SCHNET_DATA`,
    else :obj:`~/.cache/pyg_schnet`."""
    return os.environ.get('PYG_SCHNET_DATA',
                          str(Path.home() / '.cache' / 'pyg_schnet'))


#: Epochs of the main job (and the default): the README's MAE is the one
#: of this many epochs on any machine.
MAIN_JOB_EPOCHS = 25

#: Keys a resumed run may change: they do not change what is trained.
RESUMABLE = ('epochs', 'max_time', 'progress', 'device', 'devices',
             'num_nodes', 'strategy', 'num_workers', 'root', 'dataset',
             'run_dir')


@dataclass
class TrainConfig:
    r"""Everything a training run depends on. The defaults are the README's
    main job: SchNet on QM9 :math:`U_0` with 10,000 training molecules
    (the best of the sizes measured in
    ``benchmarks/results/main_job_grid.md``) for a fixed, seeded
    :data:`MAIN_JOB_EPOCHS` epochs (18 minutes on the 2-core CPU this was
    measured on; a slower or busier machine takes longer and gets the same
    test MAE, 0.0675 eV: ``benchmarks/newcomer.py``).
    Units: energies in eV, forces in eV/Å, cutoff in Å, time in
    minutes.

    Every value is checked when the configuration is made (type and range;
    numbers written as strings, e.g. YAML's ``1e-3``, are accepted), so a
    bad option fails before any data is loaded, with a message naming it.
    """
    # data
    dataset: str = 'qm9'  #: 'qm9' or an ASE-readable file
    target: Optional[str] = None  #: default: U0 (QM9), energy (files)
    root: str = field(default_factory=default_data_root)
    max_molecules: Optional[int] = None  #: first N structures only
    #: split sizes: counts, fractions, or None for the dataset's default
    #: (QM9: 1000 / 1000 / 10000; files: 0.8 / 0.1 / the rest)
    n_train: SplitSize = None
    n_val: SplitSize = None
    n_test: SplitSize = None
    split_file: Optional[str] = None  #: a split.pt to reuse instead
    readout: Optional[str] = None  #: sum | mean; default per target
    atomref: str = 'auto'  #: auto | dataset | fit | none
    forces: bool = True  #: train on forces when the data has them
    #: labels trained by property heads with the target: mu, dipole,
    #: alpha, polarizability, r2 (pyg_schnet.train.properties)
    properties: List[str] = field(default_factory=list)
    #: loss weight per target or property name (default 1 each; 0 for the
    #: target trains the heads alone)
    loss_weights: Dict[str, float] = field(default_factory=dict)
    # model
    model: str = 'schnet'
    features: Optional[int] = None  #: atom features (H=F for SchNet)
    interactions: Optional[int] = None
    cutoff: Optional[float] = None  #: Å
    model_kwargs: Dict[str, Any] = field(default_factory=dict)
    # optimisation
    epochs: int = MAIN_JOB_EPOCHS
    max_time: Optional[float] = None  #: minutes of training, this process
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
    #: data-loader worker processes; None: 0 on a CPU (they would take its
    #: cores), 4 on a GPU (collating QM9 batches takes ~40 % of a step there)
    num_workers: Optional[int] = None
    # output
    run_dir: str = 'runs/latest'
    progress: bool = True

    def __post_init__(self):
        for f in dataclasses.fields(self):
            setattr(self, f.name, _check(f.name, getattr(self, f.name)))
        _check_model_kwargs(self.model, self.model_kwargs)
        self._check_properties()
        # A trial build checks the model's arguments (types, ranges) now,
        # not after the data is loaded.
        from pyg_schnet.models import build_model
        try:
            build_model(self.model, **self.model_arguments())
        except (TypeError, ValueError) as e:
            raise ValueError(f'model options: {e}') from None

    def _check_properties(self) -> None:
        if self.target is not None and self.target in self.properties:
            raise ValueError(
                f"'{self.target}' is both the target (the readout's sum) and "
                f'a property (its head): give it as one of them')
        names = set(self.properties) | {'target'}
        unknown = sorted(set(self.loss_weights) - names - {self.target})
        if self.target is None and len(unknown) == 1 and \
                unknown[0] not in self.properties:
            unknown = []  # the default target's name, checked with the data
        if unknown:
            raise ValueError(
                f'loss_weights names {unknown}, which are not trained '
                f"(the target {self.target or '(default)'!r} and the "
                f'properties {self.properties})')
        if self.loss_weights and not self.properties:
            raise ValueError('loss_weights weigh the target against '
                             'properties; give --properties too')
        if self.properties and not any(
                self.loss_weight(name) > 0 for name in
                [self.target or 'target', *self.properties]):
            raise ValueError('every loss weight is 0: nothing would be '
                             'trained')

    def loss_weight(self, name: str) -> float:
        r"""The loss weight of target or property :obj:`name` (1 unless
        :attr:`loss_weights` says otherwise; :obj:`"target"` stands for the
        default target)."""
        if name in self.loss_weights:
            return self.loss_weights[name]
        if name not in self.properties:
            for key, weight in self.loss_weights.items():
                if key not in self.properties:  # 'target' or its name
                    return weight
        return 1.0

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
        if self.properties:
            from pyg_schnet.train.properties import PROPERTY_TARGETS
            kwargs['properties'] = [PROPERTY_TARGETS[name].head
                                    for name in self.properties]
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
            raise ValueError(f'unknown configuration keys: {sorted(unknown)} '
                             f'(known: {", ".join(sorted(known))})')
        return cls(**values)

    @classmethod
    def load(cls, path: os.PathLike) -> 'TrainConfig':
        r"""Reads a YAML file of options.

        Raises:
            FileNotFoundError: if there is no such file.
            ValueError: naming the file (and line) for YAML syntax errors,
                and the key for unknown keys or bad values.
        """
        values = read_yaml_mapping(path)
        try:
            return cls.from_dict(values)
        except ValueError as e:
            raise ValueError(f'{path}: {e}') from None


def read_yaml_mapping(path: os.PathLike) -> Dict[str, Any]:
    r"""The mapping stored in a YAML file, with errors that name the file
    and, for syntax errors, the line."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f'no configuration file at {path}')
    try:
        text = path.read_text(encoding='utf-8')
    except UnicodeDecodeError:
        raise CorruptFileError(f'{path} is not a text (YAML) file') from None
    try:
        values = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, 'problem_mark', None)
        where = f' (line {mark.line + 1}, column {mark.column + 1})' \
            if mark is not None else ''
        problem = getattr(e, 'problem', None) or str(e).splitlines()[0]
        raise CorruptFileError(f'{path} is not valid YAML{where}: '
                               f'{problem}') from None
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise CorruptFileError(f'{path} does not hold a mapping of options '
                               f'(key: value lines), but a '
                               f'{type(values).__name__}')
    return values


# -- checks of single values ------------------------------------------------

def _number(name: str, value: Any, integer: bool) -> Union[int, float]:
    kind = 'an integer' if integer else 'a number'
    if isinstance(value, bool) or value is None:
        raise ValueError(f'{name} must be {kind}, got {value!r}')
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            raise ValueError(f'{name} must be {kind}, got '
                             f'{value!r}') from None
    if not isinstance(value, (int, float)):
        raise ValueError(f'{name} must be {kind}, got {value!r}')
    if not math.isfinite(value):
        raise ValueError(f'{name} must be finite, got {value!r}')
    if integer:
        if float(value) != int(value):
            raise ValueError(f'{name} must be an integer, got {value!r}')
        return int(value)
    return float(value)


def _split_size(name: str, value: Any) -> SplitSize:
    if value is None:
        return None
    if isinstance(value, str):
        text = value.strip().lower()
        if text in ('rest', 'all'):
            if name != 'n_test':
                raise ValueError(f"{name}: only n_test may be 'rest'")
            return 'rest'
        if text.endswith('%'):
            percent = _number(name, text[:-1].strip(), integer=False)
            if not 0 < percent < 100:
                raise ValueError(
                    f'{name} {value} is not a share of the structures that '
                    f'leaves room for the other sets: give a percentage '
                    f'above 0 and below 100 (e.g. 80%)' if percent >= 100
                    else f'{name} must be a positive percentage, got '
                    f'{value}')
            return percent / 100
        else:
            value = _number(name, text, integer=False)
    value = _number(name, value, integer=False)
    if value >= 1:
        if value != int(value):
            raise ValueError(f'{name} must be a count (integer >= 1) or a '
                             f'fraction (between 0 and 1), got {value}')
        return int(value)
    if value <= 0:
        raise ValueError(f'{name} must be a count (>= 1) or a fraction '
                         f'(between 0 and 1), got {value}')
    return value


def _choice(name: str, value: Any, allowed) -> Any:
    if value not in allowed:
        shown = [a for a in allowed if a is not None]
        raise ValueError(f'{name} must be one of {shown}, got {value!r}')
    return value


_INT_MIN = {'max_molecules': 1, 'features': 1, 'interactions': 1,
            'epochs': 1, 'batch_size': 1, 'lr_patience': 0,
            'early_stopping': 1, 'seed': 0, 'devices': 1, 'num_nodes': 1,
            'num_workers': 0}
_OPTIONAL = {'target', 'max_molecules', 'split_file', 'readout',
             'features', 'interactions', 'cutoff', 'max_time', 'grad_clip',
             'ema_decay', 'num_workers'}


def _check(name: str, value: Any) -> Any:
    if name in ('n_train', 'n_val', 'n_test'):
        return _split_size(name, value)
    if value is None and name in _OPTIONAL:
        return None
    if name in _INT_MIN:
        value = _number(name, value, integer=True)
        if value < _INT_MIN[name]:
            raise ValueError(f'{name} must be at least {_INT_MIN[name]}, '
                             f'got {value}')
        return value
    if name in ('cutoff', 'max_time', 'grad_clip', 'lr'):
        value = _number(name, value, integer=False)
        if not value > 0:
            raise ValueError(f'{name} must be positive, got {value}'
                             + (" (use 'none' for no limit)"
                                if name == 'max_time' else ''))
        return value
    if name in ('weight_decay', 'min_lr', 'rho'):
        value = _number(name, value, integer=False)
        if value < 0:
            raise ValueError(f'{name} must not be negative, got {value}')
        return value
    if name in ('lr_factor', 'ema_decay'):
        value = _number(name, value, integer=False)
        if not 0 < value < 1:
            raise ValueError(f'{name} must be between 0 and 1, got {value}')
        return value
    if name in ('forces', 'progress'):
        if not isinstance(value, bool):
            raise ValueError(f'{name} must be true or false, got {value!r}')
        return value
    if name == 'model_kwargs':
        if value is None:
            return {}
        if not isinstance(value, dict) or \
                not all(isinstance(k, str) for k in value):
            raise ValueError(f'model_kwargs must be a mapping of argument '
                             f'names to values, got {value!r}')
        return dict(value)
    if name == 'properties':
        if value is None:
            return []
        if isinstance(value, str):
            value = value.replace(',', ' ').split()
        if not isinstance(value, (list, tuple)) or \
                not all(isinstance(v, str) for v in value):
            raise ValueError(f'properties must be a list of names, got '
                             f'{value!r}')
        from pyg_schnet.train.properties import check_properties
        return check_properties(value)
    if name == 'loss_weights':
        if value is None:
            return {}
        if not isinstance(value, dict) or \
                not all(isinstance(k, str) for k in value):
            raise ValueError(f'loss_weights must be a mapping of target '
                             f'names to weights, got {value!r}')
        weights = {}
        for key, weight in value.items():
            weight = _number(f'loss_weights[{key}]', weight, integer=False)
            if weight < 0:
                raise ValueError(f'loss_weights[{key}] must not be '
                                 f'negative, got {weight}')
            weights[key] = weight
        return weights
    if name == 'readout':
        return _choice(name, value, (None, 'sum', 'mean'))
    if name == 'atomref':
        return _choice(name, value, ('auto', 'dataset', 'fit', 'none'))
    if name == 'device':
        return _choice(name, value, ('auto', 'cpu', 'cuda', 'gpu'))
    if name == 'model':
        if isinstance(value, str):
            value = value.lower()
        return _choice(name, value, ('schnet', 'dtnn'))
    # plain strings: dataset, target, root, split_file, strategy, run_dir
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f'{name} must be a non-empty string, got {value!r}')
    return value


def _check_model_kwargs(model: str, kwargs: Dict[str, Any]) -> None:
    import inspect

    from pyg_schnet.models import MODELS

    params = inspect.signature(MODELS[model].__init__).parameters
    reserved = {'atomref', 'mean', 'std', 'readout', 'properties'}
    for key in kwargs:
        if key in reserved:
            raise ValueError(f"model_kwargs: '{key}' is set by the trainer "
                             f'(use the --readout/--atomref/--properties '
                             f'options)')
        if key not in params or key == 'self':
            allowed = sorted(set(params) - reserved - {'self'})
            raise ValueError(f"model_kwargs: {model} has no argument "
                             f"'{key}' (its arguments: "
                             f"{', '.join(allowed)})")
