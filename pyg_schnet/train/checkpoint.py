"""Checkpoints of a training run: written atomically every epoch, read
without running code, and a fallback to the previous one when the latest is
unreadable."""
import math
import os
import shutil
import time
import warnings
from pathlib import Path
from typing import Any, Dict, Optional, Tuple

import lightning.pytorch as pl
from lightning.fabric.plugins import CheckpointIO
from lightning.pytorch.callbacks import Checkpoint

from pyg_schnet.io import CorruptFileError, atomic_torch_save, safe_load


class AtomicCheckpointIO(CheckpointIO):
    r"""Lightning's checkpoint reader/writer, made safe.

    Writes go to a temporary file in the checkpoint's own folder, are
    ``fsync``-ed and renamed over the target (Lightning's default writes
    through an fsspec transaction that copies across filesystems when the
    temporary folder is elsewhere, so a kill or a full disk mid-copy could
    leave a truncated checkpoint). Reads use :obj:`weights_only=True`: a
    crafted checkpoint cannot run code.
    """
    def save_checkpoint(self, checkpoint: Dict[str, Any], path,
                        storage_options: Optional[Any] = None) -> None:
        atomic_torch_save(checkpoint, path)

    def load_checkpoint(self, path, map_location: Optional[Any] = None,
                        weights_only: Optional[bool] = None
                        ) -> Dict[str, Any]:
        checkpoint = safe_load(path, 'checkpoint', map_location or 'cpu')
        if not isinstance(checkpoint, dict) or 'state_dict' not in checkpoint:
            raise CorruptFileError(f'{path} is not a training checkpoint')
        return checkpoint

    def remove_checkpoint(self, path) -> None:
        Path(path).unlink(missing_ok=True)


def read_checkpoint(path: os.PathLike) -> Dict[str, Any]:
    r"""A checkpoint, read safely (see :class:`AtomicCheckpointIO`)."""
    return AtomicCheckpointIO().load_checkpoint(path)


def resume_point(last: Path, previous: Path, log=print
                 ) -> Tuple[Path, Dict[str, Any]]:
    r"""The checkpoint to resume from: :obj:`last`, or, when it is missing
    or unreadable, :obj:`previous` (the one before it), with a warning.

    Raises:
        FileNotFoundError: if neither exists.
        CorruptFileError: if neither can be read, naming both.
    """
    problems = []
    for path in (last, previous):
        if not path.exists():
            problems.append(f'{path} does not exist')
            continue
        try:
            checkpoint = read_checkpoint(path)
        except CorruptFileError as e:
            problems.append(str(e))
            continue
        if path != last:
            warnings.warn(f'{last} is unusable ({problems[0]}); resuming '
                          f'from the previous checkpoint {path}, one epoch '
                          f'earlier', stacklevel=2)
        return path, checkpoint
    if not last.exists() and not previous.exists():
        raise FileNotFoundError(f'nothing to resume: {last} does not exist')
    raise CorruptFileError('no usable checkpoint to resume from: '
                           + '; '.join(problems))


class RunCheckpoint(Checkpoint):
    r"""Saves :obj:`last.ckpt` after *every* epoch and :obj:`best.ckpt`
    whenever the monitored validation loss improves, and stops training
    early or when the time budget of this process is spent.

    Before :obj:`last.ckpt` is replaced, the one it replaces is kept as
    :obj:`previous.ckpt` (a hard link, no copy), so a resume always finds a
    complete checkpoint even if the latest one is damaged later.

    As a :class:`~lightning.pytorch.callbacks.Checkpoint` it runs after the
    other callbacks at the end of an epoch, so the epoch's metrics row
    (:class:`~pyg_schnet.train.history.EpochHistory`) is written before the
    checkpoint that includes the epoch.

    Args:
        folder (pathlib.Path): The checkpoint folder.
        monitor (str): The metric to minimise.
        patience (int): Stop after this many epochs without improvement.
        max_minutes (float, optional): Stop at the end of the epoch after
            which another epoch would exceed this many minutes of training
            in this process (each resume starts a new budget).
    """
    def __init__(self, folder: Path, monitor: str = 'val_loss',
                 patience: int = 30, max_minutes: Optional[float] = None):
        self.folder = Path(folder)
        self.last = self.folder / 'last.ckpt'
        self.previous = self.folder / 'previous.ckpt'
        self.best = self.folder / 'best.ckpt'
        self.monitor = monitor
        self.patience = patience
        self.max_minutes = max_minutes
        self.best_score = math.inf
        self.best_epoch = -1
        self.epochs_done = 0
        self.seconds = 0.0  # of training, all processes of the run
        self.stop_reason: Optional[str] = None
        self.diverged_at: Optional[int] = None
        self._start = 0.0
        self._epoch_start = 0.0

    @property
    def state_key(self) -> str:
        return 'RunCheckpoint'

    def state_dict(self) -> Dict[str, Any]:
        return {'best_score': self.best_score, 'best_epoch': self.best_epoch,
                'epochs_done': self.epochs_done, 'seconds': self.seconds,
                'stop_reason': self.stop_reason}

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        self.best_score = float(state['best_score'])
        self.best_epoch = int(state['best_epoch'])
        self.epochs_done = int(state['epochs_done'])
        self.seconds = float(state['seconds'])
        self.stop_reason = state.get('stop_reason')

    def on_load_checkpoint(self, trainer: pl.Trainer,
                           pl_module: pl.LightningModule,
                           checkpoint: Dict[str, Any]) -> None:
        # Checkpoints of runs made before this callback existed hold the
        # state of Lightning's ModelCheckpoint and EarlyStopping instead:
        # take the best score and epoch from them, so that resuming such a
        # run does not overwrite its best.ckpt with a worse model.
        states = checkpoint.get('callbacks', {})
        if self.state_key in states:
            return
        epoch = int(checkpoint.get('epoch', -1))
        self.epochs_done = epoch + 1
        for key, state in states.items():
            if key.startswith('ModelCheckpoint') and \
                    state.get('best_model_score') is not None:
                self.best_score = float(state['best_model_score'])
            if key.startswith('EarlyStopping') and 'wait_count' in state:
                self.best_epoch = epoch - int(state['wait_count'])

    def on_train_start(self, trainer: pl.Trainer,
                       pl_module: pl.LightningModule) -> None:
        self._start = time.perf_counter()
        self.stop_reason = None  # a resume decides afresh
        if self.epochs_done - 1 - self.best_epoch >= self.patience:
            # Resumed after early stopping with the same patience.
            self.stop_reason = 'early stopping'
            trainer.should_stop = True

    def on_train_epoch_start(self, trainer: pl.Trainer,
                             pl_module: pl.LightningModule) -> None:
        self._epoch_start = time.perf_counter()

    def on_train_epoch_end(self, trainer: pl.Trainer,
                           pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        epoch = trainer.current_epoch
        now = time.perf_counter()
        self.seconds += now - self._epoch_start
        self.epochs_done = epoch + 1
        score = trainer.callback_metrics.get(self.monitor)
        improved = score is not None and float(score) < self.best_score
        if improved:
            self.best_score, self.best_epoch = float(score), epoch
        losses = [trainer.callback_metrics.get(k) for k in
                  ('train_loss', self.monitor)]
        if any(v is not None and not math.isfinite(float(v))
               for v in losses):
            self.stop_reason = 'divergence'
            self.diverged_at = epoch
        elif epoch - self.best_epoch >= self.patience:
            self.stop_reason = 'early stopping'
        elif self.epochs_done >= trainer.max_epochs:
            self.stop_reason = 'epochs'
        elif self.max_minutes is not None:
            spent = now - self._start
            epoch_seconds = now - self._epoch_start
            if spent + epoch_seconds > 60 * self.max_minutes:
                self.stop_reason = 'time'
        if self.stop_reason is not None:
            trainer.should_stop = True
        if improved:
            trainer.save_checkpoint(self.best, weights_only=False)
        if trainer.is_global_zero and self.last.exists():
            _keep_as(self.last, self.previous)
        trainer.save_checkpoint(self.last, weights_only=False)


def _keep_as(source: Path, target: Path) -> None:
    r"""Makes :obj:`target` the file :obj:`source` is now (a hard link, or a
    copy where links are not supported), atomically."""
    tmp = target.with_name(f'.{target.name}.{os.getpid()}.tmp')
    tmp.unlink(missing_ok=True)
    try:
        os.link(source, tmp)
    except OSError:
        shutil.copyfile(source, tmp)
    os.replace(tmp, target)
