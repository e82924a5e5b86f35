"""Per-epoch metrics of a run, as a CSV file that survives kills and
resumes."""
import csv
import io
import os
import time
from collections import defaultdict
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import lightning.pytorch as pl

from pyg_schnet.io import CorruptFileError, atomic_write_text


def read_history(path: os.PathLike) -> List[Dict[str, float]]:
    r"""The rows of a history file, one per epoch, as floats, epochs
    counted from 1 as the log lines count them (files of earlier versions,
    which counted from 0, are read the same way).

    Raises:
        CorruptFileError: naming the file and line, if it is not such a
            CSV file.
    """
    if not os.path.exists(path):
        return []
    rows = []
    try:
        with open(path, newline='', encoding='utf-8') as f:
            reader = csv.DictReader(f)
            for row in reader:
                if None in row or 'epoch' not in row:
                    raise ValueError('unexpected columns')
                rows.append({k: float(v) for k, v in row.items()
                             if v not in ('', None)})
    except (ValueError, csv.Error, UnicodeDecodeError) as e:
        raise CorruptFileError(
            f'{path} is not a metrics file of pyg_schnet (line '
            f'{len(rows) + 2}: {e}); move it away to start the history '
            f'anew') from None
    if rows and rows[0]['epoch'] == 0:  # written before epochs began at 1
        for row in rows:
            row['epoch'] += 1
    return rows


def write_history(path: os.PathLike, rows: List[Dict[str, float]]) -> None:
    r"""Writes :obj:`rows` atomically (the columns are the union of keys,
    :obj:`epoch` first)."""
    keys = sorted({k for row in rows for k in row} - {'epoch'})
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=['epoch'] + keys)
    writer.writeheader()
    for row in rows:
        writer.writerow({**row, 'epoch': int(row['epoch'])})
    atomic_write_text(path, text.getvalue())


def trim_history(path: os.PathLike, completed_epochs: int) -> None:
    r"""Keeps the rows of the first :obj:`completed_epochs` epochs: the ones
    the checkpoint being resumed from holds."""
    rows = read_history(path)
    keep = [r for r in rows if int(r['epoch']) <= completed_epochs]
    if len(keep) != len(rows) or (rows and _zero_based(path)):
        write_history(path, keep)


def _zero_based(path: os.PathLike) -> bool:
    with open(path, newline='', encoding='utf-8') as f:
        first = next(csv.DictReader(f), None)
    return first is not None and float(first['epoch']) == 0


def epoch_metrics(path: os.PathLike) -> Dict[str, Dict[int, float]]:
    r"""The history as :obj:`{metric: {epoch: value}}` (epochs from 1)."""
    table: Dict[str, Dict[int, float]] = defaultdict(dict)
    for row in read_history(path):
        for key, value in row.items():
            if key != 'epoch':
                table[key][int(row['epoch'])] = value
    return table


class EpochHistory(pl.Callback):
    r"""Appends one row per epoch (its number counted from 1, every logged
    metric, the RMSE beside each mean squared error, and the learning
    rate) to a CSV file, rewritten
    atomically. It runs at the end of each training epoch, after
    validation and before that epoch's checkpoint is
    written (Lightning runs checkpoint callbacks last), so a run killed at
    any moment has a row for every epoch its last checkpoint holds; the
    rows of epochs after it are trimmed on resume.

    With :obj:`log` (e.g. :func:`print`, used when there is no progress
    bar), it also prints one plain line per epoch: epoch, learning rate,
    training and validation loss, validation MAE of :obj:`target` and the
    epoch's duration (and those of the :obj:`properties`, pairs of name
    and unit)."""
    def __init__(self, path: os.PathLike, target: str = 'energy',
                 unit: str = '', log: Optional[Callable[[str], None]] = None,
                 properties: Sequence[Tuple[str, str]] = ()):
        self.path = path
        self.target = target
        self.unit = unit
        self.properties = list(properties)
        self.printer = log
        self._start = 0.0

    def on_train_epoch_start(self, trainer: pl.Trainer,
                             pl_module: pl.LightningModule) -> None:
        self._start = time.perf_counter()

    def on_train_epoch_end(self, trainer: pl.Trainer,
                           pl_module: pl.LightningModule) -> None:
        if not trainer.is_global_zero or trainer.sanity_checking:
            return
        seconds = time.perf_counter() - self._start
        row = {'epoch': float(trainer.current_epoch + 1)}
        for key, value in trainer.callback_metrics.items():
            row[key] = float(value)
            if key.endswith('_mse'):  # epoch-mean squared error
                row[key[:-4] + '_rmse'] = float(value)**0.5
        row['lr'] = float(trainer.optimizers[0].param_groups[0]['lr'])
        row['seconds'] = seconds
        rows = [r for r in read_history(self.path)
                if int(r['epoch']) <= trainer.current_epoch]
        write_history(self.path, rows + [row])
        if self.printer is not None:
            self.printer(epoch_line(row, trainer.max_epochs, self.target,
                                    self.unit, self.properties))


def epoch_line(row: Dict[str, float], max_epochs: int, target: str,
               unit: str, properties: Sequence[Tuple[str, str]] = ()
               ) -> str:
    r"""One plain line that sums up an epoch of :obj:`row`."""
    parts = [f"epoch {int(row['epoch'])}/{max_epochs}",
             f"lr {row['lr']:.2e}"]
    for key, label in (('train_loss', 'train loss'),
                       ('val_loss', 'val loss')):
        if key in row:
            parts.append(f'{label} {row[key]:.4g}')
    for name, unit_ in ((target, unit), ('forces', 'eV/Å'), *properties):
        key = f'val_{name}_mae'
        if key in row:
            parts.append(f'val {name} MAE {row[key]:.4f} {unit_}'.rstrip())
    parts.append(f"{row['seconds']:.1f} s")
    return '  '.join(parts)
