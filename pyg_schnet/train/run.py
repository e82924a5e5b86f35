"""A training run from a :class:`TrainConfig`: data, split, model,
Lightning loop, checkpoints, test metrics, exported model and plots.

A run lives in one folder (the run folder). Everything needed to resume or
evaluate it is inside: the resolved configuration with absolute paths, the
split with a fingerprint of the data, checkpoints, metrics. The folder the
user names *is* the run: a copied or moved folder resumes in place, never
in the folder it was copied from.
"""
import json
import os
import sys
import warnings
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import torch
from torch_geometric.data import Dataset
from torch_geometric.loader import DataLoader

from pyg_schnet.data.splits import QM9_TEST_BLOCK, qm9_split, random_split
from pyg_schnet.graph import MAX_Z
from pyg_schnet.io import RunLock, atomic_torch_save, atomic_write_text
from pyg_schnet.models import AtomisticModel, build_model, save_model
from pyg_schnet.train.config import RESUMABLE, TrainConfig
from pyg_schnet.train.datasets import (
    TargetInfo,
    check_targets,
    dataset_elements,
    dataset_fingerprint,
    fit_atomref,
    load_dataset,
    load_split,
    read_split,
    resolve_split_sizes,
    target_statistics,
)
from pyg_schnet.train.evaluate import (
    evaluate_model,
    property_results,
    summary,
)
from pyg_schnet.train.hardware import describe_hardware

#: Split sizes when the configuration leaves them open: QM9 (the thesis'
#: small-data point) and structure files (fractions).
QM9_SPLIT = (10000, 1000, 10000)  # benchmarks/results/main_job_grid.md
FILE_SPLIT = (0.8, 0.1, 'rest')


class RunPaths:
    r"""Where a run keeps its files."""
    def __init__(self, run_dir: os.PathLike):
        self.root = Path(run_dir).absolute()
        self.config = self.root / 'config.yaml'
        self.split = self.root / 'split.pt'
        self.checkpoints = self.root / 'checkpoints'
        self.last = self.checkpoints / 'last.ckpt'
        self.previous = self.checkpoints / 'previous.ckpt'
        self.best = self.checkpoints / 'best.ckpt'
        self.metrics = self.root / 'metrics.csv'
        self.model = self.root / 'model.pt'
        self.results = self.root / 'results.json'
        self.learning_curve = self.root / 'learning_curve.png'
        self.parity = self.root / 'parity.png'

    def holds_run(self) -> bool:
        return self.config.exists() or self.last.exists() or \
            self.previous.exists()


def absolute_paths(config: TrainConfig) -> TrainConfig:
    r"""The configuration with its file paths made absolute (dataset file,
    cache root, split file, run folder), so a saved run does not depend on
    the working directory it was started from."""
    values = config.to_dict()
    if values['dataset'].lower() != 'qm9':
        values['dataset'] = str(Path(values['dataset']).absolute())
    values['root'] = str(Path(values['root']).expanduser().absolute())
    if values['split_file']:
        values['split_file'] = str(Path(values['split_file']).absolute())
    values['run_dir'] = str(Path(values['run_dir']).absolute())
    return TrainConfig.from_dict(values)


def resume_config(run_dir: os.PathLike,
                  overrides: Optional[Dict[str, Any]] = None
                  ) -> TrainConfig:
    r"""The configuration of the run in :obj:`run_dir`, for resuming it.

    :obj:`overrides` may change only what does not change the training
    itself (:data:`~pyg_schnet.train.config.RESUMABLE`: epochs, time
    budget, hardware, progress display, cache root, and the dataset path
    when the file was moved — its content is checked against the run's
    fingerprint). The run folder is always :obj:`run_dir` itself.

    Raises:
        FileNotFoundError: if :obj:`run_dir` holds no run.
        ValueError: for an override that would change the training, naming
            it and the run's value.
    """
    paths = RunPaths(run_dir)
    if not paths.config.exists():
        raise FileNotFoundError(f'nothing to resume in {paths.root} (no '
                                f'config.yaml)')
    config = TrainConfig.load(paths.config)
    values = config.to_dict()
    for key, value in (overrides or {}).items():
        if key in RESUMABLE:
            values[key] = value
        elif value != values.get(key):
            raise ValueError(
                f'--{key.replace("_", "-")} cannot change when resuming (the '
                f'run was started with {key}={values.get(key)!r}); only '
                f'{", ".join(RESUMABLE)} may. Start a new run (another '
                f'--run-dir) to train with other settings.')
    values['run_dir'] = str(paths.root)
    return absolute_paths(TrainConfig.from_dict(values))


def _is_rank_zero() -> bool:
    r"""Whether this process is the first of a (possibly distributed) run,
    judged from the launchers' environment variables."""
    return all(os.environ.get(key, '0') == '0' for key in
               ('RANK', 'LOCAL_RANK', 'NODE_RANK', 'SLURM_PROCID'))


def _prepare(config: TrainConfig, paths: RunPaths, resume: bool, log):
    if resume and config.dataset.lower() != 'qm9' and \
            not Path(config.dataset).exists():
        raise FileNotFoundError(
            f'the dataset of this run, {config.dataset}, does not exist '
            f'(moved?); give its new place with --dataset (its content is '
            f'checked against the run)')
    dataset, info = load_dataset(config.dataset, config.root, config.target,
                                 config.max_molecules)
    if config.readout is not None:
        info.readout = config.readout
    fingerprint = dataset_fingerprint(dataset, info.name)
    if resume and paths.split.exists():
        saved = read_split(paths.split).get('fingerprint')
        if saved is not None and saved != fingerprint:
            raise ValueError(
                f'the dataset {config.dataset} is not the one this run was '
                f'trained on (its structures or labels differ from the '
                f'fingerprint in {paths.split}); resume with the original '
                f'data (--dataset PATH if it moved)')
        split = load_split(paths.split, len(dataset))
    elif config.split_file:
        split = load_split(config.split_file, len(dataset))
    else:
        qm9 = config.dataset.lower() == 'qm9'
        sizes = resolve_split_sizes(
            len(dataset), (config.n_train, config.n_val, config.n_test),
            QM9_SPLIT if qm9 else FILE_SPLIT)
        start, stop = QM9_TEST_BLOCK
        if qm9 and config.max_molecules is None and sizes[1] <= start \
                and sizes[2] <= stop - start:
            # The fixed QM9 test set (see qm9_split).
            split = qm9_split(len(dataset), *sizes, seed=config.seed)
        else:
            split = random_split(len(dataset), *sizes, seed=config.seed)
    for name, idx in zip(('training', 'validation', 'test'), split,
                         strict=True):
        if idx.numel() == 0:
            source = f' of {config.split_file}' if config.split_file and \
                not (resume and paths.split.exists()) else ''
            raise ValueError(f'the {name} set{source} is empty: every run '
                             f'needs training, validation and test '
                             f'structures')
    sets = dataset[split[0]], dataset[split[1]], dataset[split[2]]
    forces = info.has_forces and config.forces
    for subset in sets:
        check_targets(subset, info.name, forces)
    if config.properties:
        from pyg_schnet.train.properties import check_property_labels
        unknown = sorted(set(config.loss_weights) - set(config.properties)
                         - {'target', info.name})
        if unknown:
            raise ValueError(f'loss_weights names {unknown}, which are not '
                             f"trained (the target '{info.name}' and the "
                             f'properties {config.properties})')
        for name, subset in zip(('training', 'validation', 'test'), sets,
                                strict=True):
            check_property_labels(subset, config.properties,
                                  f'the {name} set of {config.dataset}')
    return dataset, info, split, sets, fingerprint


def _build(config: TrainConfig, info: TargetInfo,
           train_set: Dataset) -> AtomisticModel:
    atomref = None
    if info.readout == 'sum':
        choice = config.atomref
        if choice == 'auto':
            choice = 'dataset' if info.atomref is not None else \
                ('fit' if info.unit == 'eV' else 'none')
        if choice == 'dataset':
            if info.atomref is None:
                raise ValueError(f"the dataset has no atom references for "
                                 f"'{info.name}'; use --atomref fit or none")
            atomref = info.atomref
        elif choice == 'fit':
            atomref = fit_atomref(train_set, info.name)
    mean, std = target_statistics(train_set, info.name, info.readout,
                                  atomref)
    arguments = config.model_arguments()
    max_z = arguments.get('max_z', MAX_Z)
    elements = dataset_elements(train_set, info.name)
    if isinstance(max_z, int) and not isinstance(max_z, bool) and \
            elements and max(elements) > max_z:
        raise ValueError(
            f'max_z={max_z} (--model-arg) is below the largest atomic number '
            f'in the training data ({max(elements)}): the model could not '
            f'embed those atoms; give max_z >= {max(elements)} or leave it '
            f'out (default {MAX_Z})')
    if atomref is not None and isinstance(max_z, int):
        # References are indexed by atomic number 0..max_z.
        size = max_z + 1
        atomref = torch.cat([atomref[:size], atomref.new_zeros(
            max(0, size - atomref.numel()))])
    model = build_model(config.model, readout=info.readout, atomref=atomref,
                        mean=mean, std=std, **arguments)
    model.trained_elements = elements
    if config.properties:
        from pyg_schnet.train.properties import set_head_statistics
        set_head_statistics(model, train_set, config.properties)
    return model


def _property_loss(config: TrainConfig, info: TargetInfo,
                   train_set: Dataset) -> Dict[str, Any]:
    r"""The :class:`~pyg_schnet.train.AtomisticTask` arguments of the
    property heads: weights, label scales and the target's weight."""
    if not config.properties:
        return {}
    from pyg_schnet.train.properties import label_scale
    return {'properties': {name: config.loss_weight(name)
                           for name in config.properties},
            'scales': {name: label_scale(train_set, name)
                       for name in config.properties},
            'energy_weight': config.loss_weight(info.name)}


def _property_units(names) -> List[Tuple[str, str]]:
    from pyg_schnet.train.properties import PROPERTY_TARGETS
    return [(name, PROPERTY_TARGETS[name].unit) for name in names]


def _quiet_lightning() -> None:
    # Lightning's info lines (hardware banner, cloud-service tips) and a
    # deprecation notice inside Lightning itself say nothing about the run.
    import logging
    import warnings
    for name in ('lightning.pytorch.utilities.rank_zero',
                 'lightning.fabric.utilities.rank_zero'):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings('ignore', message=r'.*isinstance\(treespec, '
                            r'LeafSpec\)')
    # DDP's note about a [1, H] weight's strides: harmless, not actionable.
    warnings.filterwarnings('ignore', message='Grad strides do not match')


def _accelerator(device: str) -> str:
    if device in ('cuda', 'gpu') and not torch.cuda.is_available():
        raise ValueError(f"--device {device} was asked for, but torch sees "
                         f"no CUDA GPU here (torch {torch.__version__}); "
                         f"use --device cpu or auto")
    if device == 'auto':
        return 'gpu' if torch.cuda.is_available() else 'cpu'
    return {'cuda': 'gpu', 'gpu': 'gpu', 'cpu': 'cpu'}[device]


def train(config: TrainConfig, resume: bool = False,
          log=print) -> Dict[str, Any]:
    r"""Runs training as configured and returns the test results.

    Files in :obj:`config.run_dir`: the resolved :obj:`config.yaml` (with
    absolute paths), the split with a fingerprint of the data
    (:obj:`split.pt`), checkpoints (:obj:`checkpoints/last.ckpt` after
    every epoch, :obj:`previous.ckpt` the one before it,
    :obj:`best.ckpt`), :obj:`metrics.csv` (one row per epoch), the
    exported best model :obj:`model.pt` (loads with
    :obj:`weights_only=True`), :obj:`results.json` and the learning-curve
    and parity plots. Every file is written atomically, and the folder is
    locked while training, so a second training in it fails at once.

    With :obj:`resume`, training continues from :obj:`last.ckpt` (or
    :obj:`previous.ckpt` if the last one is damaged) with the same split;
    use :func:`resume_config` to get the run's configuration.
    :obj:`config.max_time` is the training budget of this call: a resume
    gets a new one.

    Raises:
        FileExistsError: if the folder already holds a run and
            :obj:`resume` is not set.
        RunLockedError: if another process trains in the folder.
        ValueError: for data, configuration or hardware problems, naming
            them.
    """
    config = absolute_paths(config)
    paths = RunPaths(config.run_dir)
    # DDP's worker processes start after the first one made the folder.
    if not resume and _is_rank_zero() and paths.holds_run():
        raise FileExistsError(f'{paths.root} already holds a run; pass '
                              f'--resume to continue it or choose another '
                              f'--run-dir')
    accelerator = _accelerator(config.device)
    if _is_rank_zero():
        with RunLock(paths.root):
            return _train(config, paths, resume, accelerator, log)
    return _train(config, paths, resume, accelerator, log)


def _train(config: TrainConfig, paths: RunPaths, resume: bool,
           accelerator: str, log) -> Dict[str, Any]:
    _quiet_lightning()
    import lightning.pytorch as pl

    from pyg_schnet.train.checkpoint import (
        AtomicCheckpointIO,
        RunCheckpoint,
        resume_point,
    )
    from pyg_schnet.train.ema import WarmupEMA
    from pyg_schnet.train.history import EpochHistory, trim_history
    from pyg_schnet.train.module import AtomisticTask

    pl.seed_everything(config.seed, workers=True, verbose=False)
    dataset, info, split, (train_set, val_set, test_set), fingerprint = \
        _prepare(config, paths, resume, log)
    model = _build(config, info, train_set)
    forces = info.has_forces and config.forces
    task = AtomisticTask(model, info.name, forces=forces, rho=config.rho,
                         lr=config.lr, weight_decay=config.weight_decay,
                         lr_factor=config.lr_factor,
                         lr_patience=config.lr_patience,
                         min_lr=config.min_lr, **_property_loss(config,
                                                               info,
                                                               train_set))

    workers = config.num_workers
    if workers is None:
        workers = 0 if accelerator == 'cpu' else \
            min(4, max(0, (os.cpu_count() or 1) - 1))
    loader_args = dict(batch_size=config.batch_size,
                       num_workers=workers,
                       persistent_workers=workers > 0)
    train_loader = DataLoader(train_set, shuffle=True, **loader_args)
    val_loader = DataLoader(val_set, **loader_args)

    bar = config.progress and sys.stdout.isatty()
    checkpoint = RunCheckpoint(paths.checkpoints, monitor='val_loss',
                               patience=config.early_stopping,
                               max_minutes=config.max_time)
    callbacks: List[Any] = [
        EpochHistory(paths.metrics, info.name, info.unit,
                     log=None if bar else log,
                     properties=_property_units(config.properties)),
        checkpoint,
    ]
    if not bar and config.progress:
        from pyg_schnet.train.progress import ProgressLog
        callbacks.insert(0, ProgressLog(log, seconds=float(os.environ.get(
            'PYG_SCHNET_PROGRESS_SECONDS', '30'))))
    if config.ema_decay:
        callbacks.append(WarmupEMA(decay=config.ema_decay,
                                   use_buffers=False))
    loggers: List[Any] = []
    try:
        import tensorboard  # noqa: F401
        from lightning.pytorch.loggers import TensorBoardLogger
        loggers.append(TensorBoardLogger(paths.root, name='', version='tb'))
    except ImportError:
        pass
    trainer = pl.Trainer(
        max_epochs=config.epochs, accelerator=accelerator,
        devices=config.devices, num_nodes=config.num_nodes,
        strategy=config.strategy, plugins=[AtomicCheckpointIO()],
        gradient_clip_val=config.grad_clip, callbacks=callbacks,
        logger=loggers or False, default_root_dir=str(paths.root),
        enable_progress_bar=bar, enable_model_summary=False,
        enable_checkpointing=True,
        inference_mode=False,  # forces need autograd in validation
        log_every_n_steps=1, num_sanity_val_steps=0)

    ckpt_path = None
    finish_only = False
    if resume and (paths.last.exists() or paths.previous.exists()):
        path, state = resume_point(paths.last, paths.previous, log)
        ckpt_path = str(path)
        done = int(state['epoch']) + 1
        if config.epochs <= done and not paths.results.exists():
            # Every epoch is trained but the run did not finish (its test
            # evaluation or export failed or was interrupted): finish it.
            finish_only = True
            checkpoint.load_state_dict(state['callbacks']['RunCheckpoint'])
            log(f'{paths.root} has trained all its {done} epochs but had '
                f'not finished: evaluating and exporting it')
        elif config.epochs <= done:
            raise ValueError(
                f'{paths.root} has already trained {done} epochs, and '
                f'--epochs {config.epochs} (the total, not the number to '
                f'add) asks for no more; give more than {done}')
        elif trainer.is_global_zero:
            trim_history(paths.metrics, done)
            log(f'resuming {paths.root} after epoch {done} (from '
                f'{path.name})')
    elif resume and trainer.is_global_zero:
        trim_history(paths.metrics, 0)
        log(f'{paths.root} has no checkpoint yet: starting its training '
            f'from the first epoch')
    if trainer.is_global_zero:
        config.save(paths.config)
        if not (resume and paths.split.exists()):
            atomic_torch_save({'train': split[0], 'val': split[1],
                               'test': split[2],
                               'fingerprint': fingerprint}, paths.split)
        log(f'{config.model} on {config.dataset} ({info.name} in '
            f'{info.unit}): {len(train_set)} train / {len(val_set)} val / '
            f'{len(test_set)} test structures, '
            f'{sum(p.numel() for p in model.parameters()):,} parameters, '
            f'{"energy + forces" if forces else "energy only"}'
            + (f'; property heads: {", ".join(config.properties)} '
               f'(loss weights ' + ', '.join(
                   f'{name} {config.loss_weight(name):g}'
                   for name in [info.name, *config.properties]) + ')'
               if config.properties else ''))
    if not finish_only:
        trainer.fit(task, train_loader, val_loader, ckpt_path=ckpt_path)
    if not trainer.is_global_zero:
        return {}

    from pyg_schnet.train.checkpoint import read_checkpoint
    if checkpoint.stop_reason == 'divergence' and paths.best.exists():
        log(f'training diverged: the loss became NaN or infinite in epoch '
            f'{checkpoint.diverged_at + 1}; the model of the best epoch '
            f'before it is kept (a lower --lr or a --grad-clip may help)')
    if not paths.best.exists():
        raise ValueError(
            'no epoch improved the validation loss, so there is no model '
            'to export' + (f' (training diverged in epoch '
                           f'{checkpoint.diverged_at + 1}: the loss became '
                           f'NaN or infinite; lower --lr)'
                           if checkpoint.stop_reason == 'divergence' else ''))
    best = read_checkpoint(paths.best)
    task.load_state_dict(best['state_dict'])
    # The test set is evaluated where the model trained (a GPU run's
    # 10,000 QM9 test molecules take seconds there, minutes on a CPU).
    device = trainer.strategy.root_device
    model = task.model.to(device).eval()
    from pyg_schnet.train.properties import evaluable_properties
    evaluated = evaluable_properties(model, test_set[0]) \
        if config.properties else []
    test = evaluate_model(model, DataLoader(test_set, **loader_args),
                          info.name, forces, properties=evaluated)
    model = model.cpu()
    first = dataset[0]
    periodic = 'pbc' in first and bool(first.pbc.any())
    results = {
        'dataset': config.dataset, 'target': info.name, 'unit': info.unit,
        'model': config.model, 'periodic': periodic,
        'epochs': checkpoint.best_epoch + 1,
        'epochs_run': checkpoint.epochs_done,
        'stopped_by': checkpoint.stop_reason,
        'train_minutes': round(checkpoint.seconds / 60, 2),
        'hardware': describe_hardware(accelerator),
        'threads': torch.get_num_threads(),
        'test_count': test['count'],
        'test_mae': test[f'{info.name}_mae'],
        'test_rmse': test[f'{info.name}_rmse']}
    if forces:
        results['test_forces_mae'] = test['forces_mae']
        results['test_forces_rmse'] = test['forces_rmse']
    if config.properties:
        results['properties'] = property_results(test, evaluated)
        results['loss_weights'] = {
            name: config.loss_weight(name)
            for name in [info.name, *config.properties]}
    save_model(model, paths.model, metadata={
        'target': info.name, 'unit': info.unit, 'readout': info.readout,
        'dataset': config.dataset, 'forces': forces, 'periodic': periodic,
        'test_mae': results['test_mae'],
        **({'properties': config.properties} if config.properties else {})})
    atomic_write_text(paths.results, json.dumps(results, indent=2) + '\n')
    written = [paths.model, paths.results, paths.metrics]
    try:
        from pyg_schnet.train.plots import learning_curve, parity_plot
        learning_curve(paths.metrics, paths.learning_curve, info.name,
                       info.unit, results, config)
        parity_plot(test, paths.parity, info.name, info.unit, results,
                    config)
        written += [paths.learning_curve, paths.parity]
    except ImportError:  # matplotlib is optional
        pass
    log(summary(results))
    if checkpoint.stop_reason == 'time':
        log(f'note: the time budget (--max-time {config.max_time:g} min) '
            f'ended this run after {checkpoint.epochs_done} of the '
            f'{config.epochs} planned epochs, so its test MAE is that of a '
            f'shorter run (for the main job: not the README\'s number). '
            f'pyg-schnet train --resume --run-dir {paths.root} trains the '
            f'rest.')
    try:
        pretrained = None if config.loss_weight(info.name) == 0 else \
            _pretrained_on(config, info, len(dataset), split, test_set,
                           loader_args, device)
    except Exception as error:  # the run itself is done and saved
        pretrained = None
        warnings.warn(f'the comparison with the pretrained model failed '
                      f'({type(error).__name__}: {error}); the results of '
                      f'this run are complete in {paths.root}', stacklevel=2)
    if pretrained is not None:
        results['pretrained'] = pretrained
        atomic_write_text(paths.results, json.dumps(results, indent=2) + '\n')
        log(f"the pretrained {pretrained['name']} (trained on "
            f"{pretrained['train_size']:,} other molecules) reaches "
            f"{pretrained['test_mae']:.4f} eV on the same "
            f"{results['test_count']:,} test molecules")
    log(f'results in {paths.root}: '
        + ', '.join(p.name for p in written))
    return results


def _pretrained_on(config: TrainConfig, info: TargetInfo, num_items: int,
                   split, test_set: Dataset, loader_args,
                   device: Optional[torch.device] = None) -> Optional[dict]:
    r"""For a QM9 run whose test molecules are in the fixed QM9 test set
    (which no pretrained model has seen): the MAE of the shipped pretrained
    model of the same target on them, else :obj:`None`."""
    from pyg_schnet.models import list_pretrained, load_pretrained
    name = f'{config.model}-qm9-{info.name}'
    if config.dataset.lower() != 'qm9' or config.max_molecules is not None \
            or name not in list_pretrained():
        return None
    start, stop = QM9_TEST_BLOCK
    perm = qm9_split(num_items, 1, 1, stop - start, seed=0)[2]
    if not bool(torch.isin(split[2], perm).all()):
        return None
    model, card = load_pretrained(name, map_location=device or 'cpu')
    test = evaluate_model(model, DataLoader(test_set, **loader_args),
                          info.name)
    return {'name': name, 'test_mae': test[f'{info.name}_mae'],
            'train_size': card['split']['train']}


def checkpoint_model(run_dir: os.PathLike, which: str = 'best'):
    r"""The model of a run's checkpoint (:obj:`"best"` or :obj:`"last"`),
    rebuilt as the run built it, with the run's data split: for a run that
    is still training, or one whose :obj:`model.pt` is missing.

    Returns:
        :obj:`(model, info, (train_set, val_set, test_set), config)`, the
        model in evaluation mode.
    """
    from pyg_schnet.train.checkpoint import read_checkpoint

    if which not in ('best', 'last'):
        raise ValueError(f"which must be 'best' or 'last' (got {which!r})")
    paths = RunPaths(run_dir)
    config = resume_config(paths.root)
    _, info, _, sets, _ = _prepare(config, paths, resume=True, log=print)
    model = _build(config, info, sets[0])
    state = read_checkpoint(paths.best if which == 'best' else
                            paths.last)['state_dict']
    model.load_state_dict({key[len('model.'):]: value
                           for key, value in state.items()
                           if key.startswith('model.')})
    return model.eval(), info, sets, config
