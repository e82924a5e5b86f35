"""Learning-curve and parity plots of a training run (matplotlib PNGs)."""
import os
from typing import Any, Dict, List, Optional

from pyg_schnet.io import atomic_path
from pyg_schnet.train.evaluate import CHEMICAL_ACCURACY_EV, is_molecular_energy
from pyg_schnet.train.history import epoch_metrics


def _pyplot():
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    return plt


def _title(results: Dict[str, Any], config) -> str:
    dataset = os.path.basename(str(results.get('dataset', '')))
    size = f', N = {config.n_train}' if config is not None and \
        isinstance(config.n_train, int) else ''
    return (f"{results.get('model', '')} on {dataset}{size}: "
            f"{results.get('target', '')}")


def _log_axis(ax, values: List[float]) -> None:
    r"""A log axis with labelled ticks over the whole range of
    :obj:`values` (matplotlib's default shows none inside a single
    decade); a linear one when they span less than a factor 3."""
    import numpy as np
    from matplotlib.ticker import FuncFormatter, LogLocator

    positive = [v for v in values if v > 0]
    if not positive:
        return
    low, high = min(positive), max(positive)
    if high < 3 * low:
        # Less than a factor 3: a log axis would carry one tick label at
        # most; a linear one with a few labelled ticks reads better.
        pad = 0.1 * (high - low) or 0.1 * high
        ax.set_ylim(low - pad, high + pad)
        return
    ax.set_yscale('log')
    ax.set_ylim(low / 1.15, high * 1.15)
    if np.log10(high / low) < 2:  # label 1, 2, 5 in every decade
        ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f'{v:g}'))
    ax.yaxis.set_minor_formatter(FuncFormatter(lambda v, _: ''))


def _mark_lr_drops(ax, table) -> None:
    lr = table.get('lr', {})
    epochs = sorted(lr)
    first = True
    for a, b in zip(epochs[:-1], epochs[1:], strict=True):
        if lr[b] < lr[a] * 0.999:
            ax.axvline(b, color='0.6', ls=':', lw=1,
                       label='learning-rate drop' if first else None)
            first = False


def learning_curve(metrics_csv: os.PathLike, out: os.PathLike, target: str,
                   unit: str, results: Optional[Dict[str, Any]] = None,
                   config=None) -> None:
    r"""Per epoch: training and validation loss (with what the loss is and
    its unit), validation MAE of :obj:`target` with the best epoch (the
    model kept) and, for molecular energies, chemical accuracy marked, and
    the validation force MAE when forces are trained. Learning-rate drops
    are dotted lines."""
    plt = _pyplot()
    results = results or {'target': target, 'unit': unit}
    # Epochs counted from 1, as the log lines and results.json count them.
    table = epoch_metrics(metrics_csv)
    forces = 'val_forces_mae' in table
    fig, axes = plt.subplots(1, 3 if forces else 2,
                             figsize=(14 if forces else 10, 4.2))
    best = results.get('epochs')
    rho = getattr(config, 'rho', 0.01)
    ax = axes[0]
    for key, label in (('train_loss', 'training'), ('val_loss',
                                                    'validation')):
        if key in table:
            epochs = sorted(table[key])
            # Markers: a run of one epoch still shows its point.
            ax.plot(epochs, [table[key][e] for e in epochs], 'o-', ms=3,
                    label=label)
    _log_axis(ax, [v for k in ('train_loss', 'val_loss')
                   for v in table.get(k, {}).values()])
    ax.set_ylabel(f'loss = {rho:g}·MSE({target}) + mean |ΔF|² (eV², '
                  f'(eV/Å)²)' if forces else
                  f'loss = MSE of {target} ({unit}²)')
    panels = [(axes[1], f'val_{target}_mae',
               f'validation MAE of {target} ({unit})')]
    if forces:
        panels.append((axes[2], 'val_forces_mae',
                       'validation MAE of forces (eV/Å)'))
    for ax_, key, label in panels:
        values = table.get(key, {})
        epochs = sorted(values)
        ax_.plot(epochs, [values[e] for e in epochs], 'o-', ms=3,
                 color='C1')
        shown = list(values.values())
        if best is not None and best in values:
            ax_.plot([best], [values[best]], 'o', color='C3',
                     label=f'best epoch {best} (kept): '
                     f'{values[best]:.4g}')
        if key == f'val_{target}_mae' and is_molecular_energy(results):
            ax_.axhline(CHEMICAL_ACCURACY_EV, color='k', ls='--', lw=1,
                        label='chemical accuracy (0.043 eV)')
            shown.append(CHEMICAL_ACCURACY_EV)
        _log_axis(ax_, shown)
        ax_.set_ylabel(label)
    for ax_ in axes:
        ax_.set_xlabel('epoch')
        _mark_lr_drops(ax_, table)
        if ax_.get_legend_handles_labels()[0]:
            ax_.legend(fontsize=8)
        ax_.grid(alpha=0.3, which='both')
    fig.suptitle(_title(results, config))
    fig.tight_layout()
    with atomic_path(out) as tmp:
        fig.savefig(tmp, dpi=120, format='png')
    plt.close(fig)


def parity_plot(test: Dict[str, Any], out: os.PathLike, target: str,
                unit: str, results: Optional[Dict[str, Any]] = None,
                config=None) -> None:
    r"""The test set: predicted against reference (a parity plot with the
    line y = x; for energies with atom references, per atom and minus the
    references, so that errors of a few meV are visible next to totals of
    thousands of eV), a histogram of the errors with a logarithmic count
    (the tails show), and for force training the same two for the force
    components."""
    import numpy as np

    plt = _pyplot()
    results = results or {'target': target, 'unit': unit}
    reference = np.asarray(test['reference'], dtype=float)
    predicted = np.asarray(test['predicted'], dtype=float)
    error = predicted - reference
    x, y, what = reference, predicted, f'{target} ({unit})'
    if test.get('offset') is not None and test.get('num_atoms'):
        offset = np.asarray(test['offset'])
        atoms = np.asarray(test['num_atoms'])
        x, y = (reference - offset) / atoms, (predicted - offset) / atoms
        what = f'({target} - atom references) / atoms ({unit})'
    forces = 'forces_predicted' in test
    fig, axes = plt.subplots(1, 4 if forces else 2,
                             figsize=(17 if forces else 9.5, 4))

    def parity(ax, ref, pred, label):
        ax.scatter(ref, pred, s=3, alpha=0.4)
        low, high = min(ref.min(), pred.min()), max(ref.max(), pred.max())
        ax.plot([low, high], [low, high], 'k--', lw=1, label='y = x')
        ax.set_xlabel(f'reference {label}')
        ax.set_ylabel(f'predicted {label}')
        ax.legend(fontsize=8)

    parity(axes[0], x, y, what)
    axes[1].hist(error, bins=100, log=True)
    axes[1].set_xlabel(f'error, predicted - reference ({unit}); MAE '
                       f'{np.abs(error).mean():.4f}, RMSE '
                       f'{np.sqrt((error**2).mean()):.4f}')
    axes[1].set_ylabel('structures (log scale)')
    if forces:
        fp = np.asarray(test['forces_predicted'])
        fr = np.asarray(test['forces_reference'])
        parity(axes[2], fr, fp, 'force component (eV/Å)')
        ferr = fp - fr
        axes[3].hist(ferr, bins=100, log=True)
        axes[3].set_xlabel(f'force error (eV/Å); MAE '
                           f'{np.abs(ferr).mean():.4f}')
        axes[3].set_ylabel('components (log scale)')
    for ax in axes:
        ax.grid(alpha=0.3)
    fig.suptitle(f'{_title(results, config)} — test set, '
                 f'{len(reference)} structures')
    fig.tight_layout()
    with atomic_path(out) as tmp:
        fig.savefig(tmp, dpi=120, format='png')
    plt.close(fig)
