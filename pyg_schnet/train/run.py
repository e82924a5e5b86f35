"""A training run from a :class:`TrainConfig`: data, split, model,
Lightning loop, checkpoints, test metrics, exported model and plots."""
import json
import os
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

import torch
from torch_geometric.data import Dataset
from torch_geometric.loader import DataLoader

from pyg_schnet.data.atomic import atomic_torch_save, atomic_write_text
from pyg_schnet.data.splits import random_split
from pyg_schnet.models import AtomisticModel, build_model, save_model
from pyg_schnet.train.config import TrainConfig
from pyg_schnet.train.datasets import (
    TargetInfo,
    fit_atomref,
    load_dataset,
    target_statistics,
)

#: "Chemical accuracy", 1 kcal/mol, in eV.
CHEMICAL_ACCURACY_EV = 0.043


class RunPaths:
    r"""Where a run keeps its files."""
    def __init__(self, run_dir: os.PathLike):
        self.root = Path(run_dir)
        self.config = self.root / 'config.yaml'
        self.split = self.root / 'split.pt'
        self.checkpoints = self.root / 'checkpoints'
        self.last = self.checkpoints / 'last.ckpt'
        self.best = self.checkpoints / 'best.ckpt'
        self.metrics = self.root / 'metrics.csv'
        self.model = self.root / 'model.pt'
        self.results = self.root / 'results.json'
        self.learning_curve = self.root / 'learning_curve.png'
        self.parity = self.root / 'parity.png'


def evaluate_model(model: AtomisticModel, loader: DataLoader, target: str,
                   forces: bool = False,
                   device: Optional[torch.device] = None) -> Dict[str, Any]:
    r"""MAE and RMSE of :obj:`model` on :obj:`loader` for :obj:`target` (in
    its unit) and, with :obj:`forces`, for force components (eV/Å). Also
    returns the predicted and reference values and, for a model with atom
    references, their sum per structure (for parity plots)."""
    device = device or next(model.parameters()).device
    model.eval()
    predicted, reference, offset, force_errors = [], [], [], []
    for batch in loader:
        batch = batch.to(device)
        if model.use_atomref:  # sum of reference energies per structure
            offset.append(torch.zeros(batch.num_graphs, dtype=torch.float64)
                          .index_add_(0, batch.batch.cpu(),
                                      model.atomref[batch.z].cpu()))
        if forces:
            energy, force = model(batch, forces=True)
            force_errors.append((force - batch.forces).detach().flatten())
        else:
            with torch.no_grad():
                energy = model(batch)
        predicted.append(energy.detach().double().cpu())
        reference.append(batch[target].view(-1).double().cpu())
    predicted, reference = torch.cat(predicted), torch.cat(reference)
    error = predicted - reference
    out: Dict[str, Any] = {
        'count': int(error.numel()),
        f'{target}_mae': float(error.abs().mean()),
        f'{target}_rmse': float(error.pow(2).mean().sqrt()),
        'predicted': predicted.tolist(), 'reference': reference.tolist(),
        'offset': torch.cat(offset).tolist() if offset else None}
    if forces:
        ferr = torch.cat(force_errors).double().cpu()
        out['forces_mae'] = float(ferr.abs().mean())
        out['forces_rmse'] = float(ferr.pow(2).mean().sqrt())
    return out


def load_split(path: os.PathLike, num_items: int):
    r"""The :obj:`(train, val, test)` index tensors of a :obj:`split.pt`
    file (a dict of three 1-D integer tensors), checked against a dataset
    of :obj:`num_items` structures: indices in range, no structure in two
    sets, none repeated."""
    blob = torch.load(path, map_location='cpu', weights_only=True)
    if not isinstance(blob, dict) or not {'train', 'val', 'test'} <= set(blob):
        raise ValueError(f'{path} is not a split file (a dict with train, '
                         f'val and test index tensors)')
    sets = []
    for name in ('train', 'val', 'test'):
        idx = blob[name]
        if not isinstance(idx, torch.Tensor) or idx.dim() != 1 or \
                idx.is_floating_point():
            raise ValueError(f"{path}: '{name}' must be a 1-D integer "
                             f'tensor')
        idx = idx.long()
        if idx.numel() and (int(idx.min()) < 0 or
                            int(idx.max()) >= num_items):
            raise ValueError(f"{path}: '{name}' holds indices outside "
                             f'0..{num_items - 1} (the dataset has '
                             f'{num_items} structures)')
        sets.append(idx)
    everything = torch.cat(sets)
    if torch.unique(everything).numel() != everything.numel():
        raise ValueError(f'{path}: a structure appears twice (in two sets '
                         f'or twice in one)')
    return tuple(sets)


def _prepare(config: TrainConfig, paths: RunPaths, resume: bool):
    dataset, info = load_dataset(config.dataset, config.root, config.target,
                                 config.max_molecules)
    if config.readout is not None:
        info.readout = config.readout
    if resume and paths.split.exists():
        train_idx, val_idx, test_idx = load_split(paths.split, len(dataset))
    elif config.split_file:
        train_idx, val_idx, test_idx = load_split(config.split_file,
                                                  len(dataset))
    else:
        train_idx, val_idx, test_idx = random_split(
            len(dataset), config.n_train, config.n_val, config.n_test,
            config.seed)
    sets = dataset[train_idx], dataset[val_idx], dataset[test_idx]
    return dataset, info, (train_idx, val_idx, test_idx), sets


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
    return build_model(config.model, readout=info.readout, atomref=atomref,
                       mean=mean, std=std, **config.model_arguments())


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
    warnings.filterwarnings('ignore', message='Checkpoint directory .* '
                            'exists and is not empty')


def _accelerator(device: str) -> str:
    if device == 'auto':
        return 'gpu' if torch.cuda.is_available() else 'cpu'
    return {'cuda': 'gpu', 'gpu': 'gpu', 'cpu': 'cpu'}[device]


def train(config: TrainConfig, resume: bool = False,
          log=print) -> Dict[str, Any]:
    r"""Runs training as configured and returns the test results.

    Files in :obj:`config.run_dir`: the resolved :obj:`config.yaml`, the
    split (:obj:`split.pt`), checkpoints (:obj:`checkpoints/last.ckpt` after
    every epoch, :obj:`checkpoints/best.ckpt`), CSV (and TensorBoard)
    logs, the exported best model :obj:`model.pt` (loads with
    :obj:`weights_only=True`), :obj:`results.json` and the learning-curve and
    parity plots. With :obj:`resume`, training continues from
    :obj:`last.ckpt` with the same split.
    """
    _quiet_lightning()
    import lightning.pytorch as pl
    from lightning.pytorch.callbacks import (
        EarlyStopping,
        EMAWeightAveraging,
        ModelCheckpoint,
    )

    from pyg_schnet.train.history import EpochHistory, trim_history
    from pyg_schnet.train.module import AtomisticTask

    paths = RunPaths(config.run_dir)
    if resume and not paths.last.exists():
        raise FileNotFoundError(f'nothing to resume: {paths.last} does not '
                                f'exist')
    if not resume and paths.last.exists():
        raise FileExistsError(f'{paths.root} already holds a run; pass '
                              f'--resume to continue it or choose another '
                              f'--run-dir')
    paths.root.mkdir(parents=True, exist_ok=True)
    pl.seed_everything(config.seed, workers=True, verbose=False)
    start = time.perf_counter()
    dataset, info, split, (train_set, val_set, test_set) = _prepare(
        config, paths, resume)
    model = _build(config, info, train_set)
    forces = info.has_forces and config.forces
    task = AtomisticTask(model, info.name, forces=forces, rho=config.rho,
                         lr=config.lr, weight_decay=config.weight_decay,
                         lr_factor=config.lr_factor,
                         lr_patience=config.lr_patience,
                         min_lr=config.min_lr)

    loader_args = dict(batch_size=config.batch_size,
                       num_workers=config.num_workers,
                       persistent_workers=config.num_workers > 0)
    train_loader = DataLoader(train_set, shuffle=True, **loader_args)
    val_loader = DataLoader(val_set, **loader_args)

    callbacks: List[Any] = [
        EpochHistory(paths.metrics),
        ModelCheckpoint(dirpath=paths.checkpoints, filename='best',
                        monitor='val_loss', mode='min', save_last=True,
                        enable_version_counter=False,
                        save_on_train_epoch_end=True),
        EarlyStopping(monitor='val_loss', mode='min',
                      patience=config.early_stopping),
    ]
    if config.ema_decay:
        callbacks.append(EMAWeightAveraging(decay=config.ema_decay,
                                            use_buffers=False))
    loggers: List[Any] = []
    try:
        import tensorboard  # noqa: F401
        from lightning.pytorch.loggers import TensorBoardLogger
        loggers.append(TensorBoardLogger(paths.root, name='', version='tb'))
    except ImportError:
        pass
    max_time = None if config.max_time is None else \
        {'minutes': config.max_time}
    trainer = pl.Trainer(
        max_epochs=config.epochs, max_time=max_time,
        accelerator=_accelerator(config.device), devices=config.devices,
        num_nodes=config.num_nodes, strategy=config.strategy,
        gradient_clip_val=config.grad_clip, callbacks=callbacks,
        logger=loggers or False, default_root_dir=str(paths.root),
        enable_progress_bar=config.progress, enable_model_summary=False,
        inference_mode=False,  # forces need autograd in validation
        log_every_n_steps=1, num_sanity_val_steps=0)

    if trainer.is_global_zero:
        config.save(paths.config)
        if not (resume and paths.split.exists()):
            atomic_torch_save(dict(zip(('train', 'val', 'test'), split,
                                       strict=True)), paths.split)
        log(f'{config.model} on {config.dataset} ({info.name} in '
            f'{info.unit}): {len(train_set)} train / {len(val_set)} val / '
            f'{len(test_set)} test structures, '
            f'{sum(p.numel() for p in model.parameters()):,} parameters, '
            f'{"energy + forces" if forces else "energy only"}')
    ckpt_path = None
    if resume:
        ckpt_path = str(paths.last)
        done = torch.load(paths.last, map_location='cpu',
                          weights_only=False)['epoch']
        if trainer.is_global_zero:
            trim_history(paths.metrics, done + 1)
            log(f'resuming after epoch {done + 1} from {paths.last}')
    trainer.fit(task, train_loader, val_loader, ckpt_path=ckpt_path)
    if not trainer.is_global_zero:
        return {}

    best = torch.load(paths.best, map_location='cpu', weights_only=False)
    task.load_state_dict(best['state_dict'])
    model = task.model.cpu().eval()
    train_minutes = (time.perf_counter() - start) / 60
    test = evaluate_model(model, DataLoader(test_set, **loader_args),
                          info.name, forces)
    results = {
        'dataset': config.dataset, 'target': info.name, 'unit': info.unit,
        'model': config.model, 'epochs': int(best['epoch']) + 1,
        'epochs_run': int(trainer.current_epoch),
        'train_minutes': round(train_minutes, 2),
        'test_count': test['count'],
        'test_mae': test[f'{info.name}_mae'],
        'test_rmse': test[f'{info.name}_rmse']}
    if forces:
        results['test_forces_mae'] = test['forces_mae']
        results['test_forces_rmse'] = test['forces_rmse']
    save_model(model, paths.model, metadata={
        'target': info.name, 'unit': info.unit, 'readout': info.readout,
        'dataset': config.dataset, 'forces': forces,
        'test_mae': results['test_mae']})
    atomic_write_text(paths.results, json.dumps(results, indent=2) + '\n')
    try:
        from pyg_schnet.train.plots import learning_curve, parity_plot
        learning_curve(paths.metrics, paths.learning_curve, info.name,
                       info.unit)
        parity_plot(test['reference'], test['predicted'], paths.parity,
                    info.name, info.unit, test['offset'])
    except ImportError:  # matplotlib is optional
        pass
    log(summary(results))
    return results


def summary(results: Dict[str, Any]) -> str:
    r"""The closing lines of a run: test MAE next to chemical accuracy for
    energies in eV."""
    target, unit = results['target'], results['unit']
    lines = [f"test {target} MAE: {results['test_mae']:.4f} {unit}, RMSE: "
             f"{results['test_rmse']:.4f} {unit} on {results['test_count']} "
             f"structures (best epoch {results['epochs']} of "
             f"{results['epochs_run']}, {results['train_minutes']:.1f} min)"]
    if unit == 'eV':
        ratio = results['test_mae'] / CHEMICAL_ACCURACY_EV
        lines.append(f'chemical accuracy is {CHEMICAL_ACCURACY_EV} eV '
                     f'(1 kcal/mol): the test MAE is {ratio:.1f}x that')
    if 'test_forces_mae' in results:
        lines.append(f"test forces MAE: {results['test_forces_mae']:.4f} "
                     f'eV/Å')
    return '\n'.join(lines)
