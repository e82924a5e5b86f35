"""Per-epoch metrics of a run, as a CSV file that survives kills and
resumes."""
import csv
import io
import os
from collections import defaultdict
from typing import Dict, List

import lightning.pytorch as pl

from pyg_schnet.data.atomic import atomic_write_text


def read_history(path: os.PathLike) -> List[Dict[str, float]]:
    r"""The rows of a history file, one per epoch, as floats."""
    if not os.path.exists(path):
        return []
    with open(path, newline='') as f:
        return [{k: float(v) for k, v in row.items() if v not in ('', None)}
                for row in csv.DictReader(f)]


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
    keep = [r for r in rows if int(r['epoch']) < completed_epochs]
    if len(keep) != len(rows):
        write_history(path, keep)


def epoch_metrics(path: os.PathLike) -> Dict[str, Dict[int, float]]:
    r"""The history as :obj:`{metric: {epoch: value}}`."""
    table: Dict[str, Dict[int, float]] = defaultdict(dict)
    for row in read_history(path):
        for key, value in row.items():
            if key != 'epoch':
                table[key][int(row['epoch'])] = value
    return table


class EpochHistory(pl.Callback):
    r"""Appends one row per epoch (every logged metric, the RMSE beside each
    mean squared error, and the learning rate) to a CSV file, rewritten
    atomically. It runs at the end of each training epoch, after
    validation and before that epoch's checkpoint is
    written (Lightning runs checkpoint callbacks last), so a run killed at
    any moment has a row for every epoch its last checkpoint holds; the
    rows of epochs after it are trimmed on resume."""
    def __init__(self, path: os.PathLike):
        self.path = path

    def on_train_epoch_end(self, trainer: pl.Trainer,
                           pl_module: pl.LightningModule) -> None:
        if not trainer.is_global_zero or trainer.sanity_checking:
            return
        row = {'epoch': float(trainer.current_epoch)}
        for key, value in trainer.callback_metrics.items():
            row[key] = float(value)
            if key.endswith('_mse'):  # epoch-mean squared error
                row[key[:-4] + '_rmse'] = float(value)**0.5
        row['lr'] = float(trainer.optimizers[0].param_groups[0]['lr'])
        rows = [r for r in read_history(self.path)
                if int(r['epoch']) < trainer.current_epoch]
        write_history(self.path, rows + [row])
