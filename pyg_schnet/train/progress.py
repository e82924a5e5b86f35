r"""Progress lines inside an epoch for logs and other non-terminal
outputs (where there is no progress bar): batches done, throughput, and
the time left in the epoch and in the run."""
import time
from typing import Callable, Optional

import lightning.pytorch as pl


def format_duration(seconds: float) -> str:
    r""":obj:`seconds` as ``h:mm:ss`` or ``m:ss``."""
    seconds = max(0, int(round(seconds)))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f'{hours}:{minutes:02d}:{secs:02d}' if hours else \
        f'{minutes}:{secs:02d}'


def progress_line(epoch: int, epochs: int, batch: int, batches: int,
                  seconds: float, structures: int,
                  epoch_seconds: Optional[float] = None) -> str:
    r"""One plain line: epoch :obj:`epoch` of :obj:`epochs` (from 1),
    :obj:`batch` of :obj:`batches` done after :obj:`seconds` in this
    epoch, :obj:`structures` seen, and the estimated time left in the
    epoch and in the run (from :obj:`epoch_seconds`, the time a whole
    epoch takes with validation, when known)."""
    rate = batch / seconds if seconds > 0 else 0.0
    left = (batches - batch) / rate if rate > 0 else float('nan')
    whole = epoch_seconds if epoch_seconds is not None else \
        (batches / rate if rate > 0 else float('nan'))
    run_left = left + (epochs - epoch) * whole
    eta = '' if left != left else \
        f', {format_duration(left)} left in the epoch, about ' \
        f'{format_duration(run_left)} in the run'
    return (f'epoch {epoch}/{epochs}: batch {batch}/{batches} '
            f'({100 * batch / max(batches, 1):.0f} %), '
            f'{structures / seconds if seconds > 0 else 0:.0f} structures/s'
            f'{eta}')


class ProgressLog(pl.Callback):
    r"""Prints :func:`progress_line` every :obj:`seconds` seconds (and at
    least every :obj:`every` batches) during training epochs, through
    :obj:`log`. The trainer uses 30 s (``PYG_SCHNET_PROGRESS_SECONDS``
    sets another interval)."""
    def __init__(self, log: Callable[[str], None], seconds: float = 30.0,
                 every: Optional[int] = None):
        # Not 'self.log': Lightning routes that name of a callback to
        # LightningModule.log.
        self.printer = log
        self.seconds = seconds
        self.every = every
        self._start = self._last = 0.0
        self._structures = 0
        self._epoch_seconds: Optional[float] = None

    def on_train_epoch_start(self, trainer: pl.Trainer,
                             pl_module: pl.LightningModule) -> None:
        self._start = self._last = time.perf_counter()
        self._structures = 0

    def on_train_batch_end(self, trainer: pl.Trainer,
                           pl_module: pl.LightningModule, outputs, batch,
                           batch_idx: int) -> None:
        if not trainer.is_global_zero:
            return
        self._structures += int(getattr(batch, 'num_graphs', 0) or 0)
        now = time.perf_counter()
        done = batch_idx + 1
        due = now - self._last >= self.seconds or \
            (self.every is not None and done % self.every == 0)
        batches = trainer.num_training_batches
        if due and done < batches:
            self._last = now
            self.printer(progress_line(trainer.current_epoch + 1,
                                   trainer.max_epochs, done, batches,
                                   now - self._start, self._structures,
                                   self._epoch_seconds))

    def on_train_epoch_end(self, trainer: pl.Trainer,
                           pl_module: pl.LightningModule) -> None:
        self._epoch_seconds = time.perf_counter() - self._start
