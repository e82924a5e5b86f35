"""Learning-curve and parity plots of a training run (matplotlib PNGs)."""
import os
from typing import Optional, Sequence

from pyg_schnet.data.atomic import atomic_path
from pyg_schnet.train.history import epoch_metrics


def _pyplot():
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    return plt


def learning_curve(metrics_csv: os.PathLike, out: os.PathLike, target: str,
                   unit: str) -> None:
    r"""Training and validation loss, and validation MAE (:obj:`unit`), per
    epoch."""
    plt = _pyplot()
    table = epoch_metrics(metrics_csv)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    for key, label in (('train_loss', 'train'), ('val_loss', 'validation')):
        if key in table:
            epochs = sorted(table[key])
            ax1.semilogy(epochs, [table[key][e] for e in epochs], label=label)
    ax1.set_xlabel('epoch')
    ax1.set_ylabel('loss')
    ax1.legend()
    key = f'val_{target}_mae'
    if key in table:
        epochs = sorted(table[key])
        ax2.semilogy(epochs, [table[key][e] for e in epochs])
    ax2.set_xlabel('epoch')
    ax2.set_ylabel(f'validation MAE of {target} ({unit})')
    fig.tight_layout()
    with atomic_path(out) as tmp:
        fig.savefig(tmp, dpi=120, format='png')
    plt.close(fig)


def parity_plot(reference: Sequence[float], predicted: Sequence[float],
                out: os.PathLike, target: str, unit: str,
                offset: Optional[Sequence[float]] = None) -> None:
    r"""Predicted against reference values of the test set, and a histogram
    of the errors. With :obj:`offset` (the sum of atom reference energies
    per structure) both axes show :math:`Y - \sum_i E^{ref}_{Z_i}` (e.g.
    atomization energies), which the total energies would hide."""
    import numpy as np

    plt = _pyplot()
    reference = np.asarray(reference, dtype=float)
    predicted = np.asarray(predicted, dtype=float)
    label = target
    if offset is not None:
        reference = reference - np.asarray(offset)
        predicted = predicted - np.asarray(offset)
        label = f'{target} - atom references'
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 4))
    ax1.scatter(reference, predicted, s=3, alpha=0.4)
    low = min(reference.min(), predicted.min())
    high = max(reference.max(), predicted.max())
    ax1.plot([low, high], [low, high], 'k--', lw=1)
    ax1.set_xlabel(f'reference {label} ({unit})')
    ax1.set_ylabel(f'predicted {label} ({unit})')
    error = predicted - reference
    ax2.hist(error, bins=100)
    ax2.set_xlabel(f'error ({unit}); MAE {np.abs(error).mean():.4f}')
    ax2.set_ylabel('structures')
    fig.tight_layout()
    with atomic_path(out) as tmp:
        fig.savefig(tmp, dpi=120, format='png')
    plt.close(fig)
