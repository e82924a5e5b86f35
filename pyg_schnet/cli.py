"""The ``pyg-schnet`` command: it parses, calls the package's library
functions, and prints.

Nothing heavy is imported until a command runs, so ``--help``,
``--version`` and option errors answer at once (torch is imported by the
command that needs it). Options are never abbreviated; a mistyped one gets
a suggestion.
"""
import argparse
import dataclasses
import difflib
import os
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional

from pyg_schnet.train.config import MAIN_JOB_EPOCHS, TrainConfig

#: TrainConfig's defaults, for the help texts (read from the dataclass,
#: without building a model: that would import torch).
_DEFAULTS = {f.name: f.default for f in dataclasses.fields(TrainConfig)
             if f.default is not dataclasses.MISSING}
_DEFAULTS.update(root='$PYG_SCHNET_DATA or ~/.cache/pyg_schnet',
                 model_kwargs={})


class _Parser(argparse.ArgumentParser):
    r"""argparse without abbreviations, with "did you mean" for mistyped
    commands and choices."""
    def __init__(self, *args, **kwargs):
        kwargs.setdefault('allow_abbrev', False)
        super().__init__(*args, **kwargs)

    def error(self, message: str):
        if 'invalid choice' in message:
            import re
            found = re.search(r"invalid choice: '([^']*)' \(choose from "
                              r"(.*)\)", message)
            if found:
                choices = [c.strip(" '") for c in found.group(2).split(',')]
                close = difflib.get_close_matches(found.group(1), choices,
                                                  n=1)
                if close:
                    message += f"; did you mean '{close[0]}'?"
        super().error(message)


def _option_strings(parser: argparse.ArgumentParser) -> List[str]:
    return [s for action in parser._actions for s in action.option_strings]


def _unknown_options(parser: argparse.ArgumentParser, extras: List[str]
                     ) -> str:
    r"""The error for unrecognised arguments, with the closest option of
    :obj:`parser` for each mistyped one."""
    known = _option_strings(parser)
    parts = []
    for extra in extras:
        name = extra.split('=', 1)[0]
        close = difflib.get_close_matches(name, known, n=1, cutoff=0.6) \
            if name.startswith('-') else []
        parts.append(f'{extra} (did you mean {close[0]}?)' if close
                     else extra)
    return 'unrecognized arguments: ' + ' '.join(parts)


def _positive(kind):
    r"""An argparse type: a positive, finite :obj:`kind` (int or float)."""
    name = 'integer' if kind is int else 'number'

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected a positive {name}, got '{text}'") from None
        if not (value > 0 and value != float('inf')):
            raise argparse.ArgumentTypeError(
                f'expected a positive {name}, got {value}')
        return value
    return parse


_positive_int = _positive(int)
_positive_float = _positive(float)


def _finite_float(text: str) -> float:
    import math
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a number, got '{text}'") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(
            f'expected a finite number, got {text}')
    return value


def _optional_float(text: str) -> Optional[float]:
    r"""A number, or :obj:`None` for 'none'/'off' (0 is a number: the
    configuration refuses it where it makes no sense)."""
    if text.strip().lower() in ('none', 'off'):
        return None
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a number or 'none', got '{text}'") from None


def _key_value(text: str):
    if '=' not in text:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got '{text}'")
    import yaml
    key, value = text.split('=', 1)
    return key, yaml.safe_load(value)


def _common() -> argparse.ArgumentParser:
    r"""Options every command has."""
    common = _Parser(add_help=False)
    common.add_argument(
        '--threads', type=_positive_int, default=None, metavar='N',
        help='torch CPU threads (default: OMP_NUM_THREADS if set, else the '
        "package's rule: 1 for small systems and on a busy machine, the "
        'free cores otherwise; see pyg_schnet.threads)')
    return common


# -- train -------------------------------------------------------------------

def _train_parser(sub, common) -> None:
    p = sub.add_parser(
        'train', parents=[common],
        help='train SchNet/DTNN on QM9 or on any ASE-readable file',
        description='Train a model. With no options: SchNet on QM9 U0, '
        f'10,000 training molecules, {MAIN_JOB_EPOCHS} epochs (seeded: the '
        "README's test MAE, 0.0675 eV, on any machine; 18 minutes on an "
        'idle 2-core CPU), then the test MAE in eV. Options override the YAML '
        'file given with --config (same keys, with underscores), which '
        'overrides the defaults; the resolved configuration is saved as '
        'RUN_DIR/config.yaml.',
        argument_default=argparse.SUPPRESS)
    d = _DEFAULTS

    def opt(group, flag, help, **kwargs):
        field = kwargs.pop('dest', flag[2:].replace('-', '_'))
        default = d.get(field)
        if not kwargs.get('action'):
            help = f'{help} (default: {default})'
        group.add_argument(flag, dest=field, help=help, **kwargs)

    p.add_argument('--config', help='YAML file of options')
    p.add_argument('--resume', action='store_true',
                   help='continue the run in --run-dir from its last '
                   'checkpoint with its saved configuration (or finish a run '
                   'whose epochs are all trained); only --epochs, '
                   '--max-time, hardware options, --no-progress, --root and '
                   '--dataset (a moved file, checked against the run) may '
                   'be given')
    g = p.add_argument_group('data')
    opt(g, '--dataset', "'qm9' or a structure file ASE can read (extxyz, "
        'traj, .db, ...)')
    opt(g, '--target', 'per-graph target: a QM9 property (U0, U, H, G, '
        'homo, lumo, gap, zpve, alpha, r2, cv, mu) or a file label; None '
        "means U0 for QM9, 'energy' for files")
    opt(g, '--root', 'dataset cache folder')
    opt(g, '--max-molecules', 'use only the first N structures', type=int)
    g.add_argument('--n-train', dest='n_train', metavar='N',
                   help='training structures: a count, or a fraction such as '
                   '0.8 or 80%% (default: QM9 10000, files 80%%)')
    g.add_argument('--n-val', dest='n_val', metavar='N',
                   help='validation structures, count or fraction (default: '
                   'QM9 1000, files 10%%)')
    g.add_argument('--n-test', dest='n_test', metavar='N',
                   help="test structures, count or fraction, or 'rest' "
                   '(default: QM9 10000, files the rest)')
    opt(g, '--split-file', 'reuse the split of another run (its split.pt: '
        'train/val/test index tensors) instead of --n-train/--n-val/'
        '--n-test')
    opt(g, '--readout', "'sum' (extensive) or 'mean' (intensive); None "
        'means the natural one of the target (QM9: mean for homo/lumo/gap, '
        'else sum)', choices=['sum', 'mean'])
    opt(g, '--atomref', "reference energies per element: the dataset's "
        '(QM9 free atoms), a least-squares fit to the training set, or '
        "none; 'auto' takes the dataset's if it has them, else fits them "
        'for energies in eV', choices=['auto', 'dataset', 'fit', 'none'])
    opt(g, '--no-forces', 'train on energies only, even if the data has '
        'forces', dest='forces', action='store_false')
    opt(g, '--properties', 'labels trained by property heads along with '
        'the target: mu (QM9 |μ|, e·Å) or dipole (vectors of a file, '
        'e·Å) by latent charges; alpha (QM9, tr α/3) or polarizability '
        '(QM9 tensors, by their eigenvalues) in Å³; r2 (Å²)', nargs='+',
        metavar='NAME')
    opt(g, '--loss-weights', 'weight of each trained name in the loss, '
        "e.g. U0=0 mu=1 (the target's weight 0 trains the heads alone; "
        'property errors are divided by their mean square label)',
        nargs='+', type=_key_value, metavar='NAME=W')
    opt(g, '--seed', 'seed of the split and the initialisation', type=int)
    g = p.add_argument_group('model')
    opt(g, '--model', 'architecture', choices=['schnet', 'dtnn'])
    opt(g, '--features', 'atom features (SchNet: hidden channels = '
        'filters, 128 if None; DTNN: 30)', type=int)
    opt(g, '--interactions', 'interaction blocks (SchNet 6, DTNN 3 if '
        'None)', type=int)
    opt(g, '--cutoff', 'cutoff radius in Å (SchNet 5, DTNN 20 if None)',
        type=float)
    opt(g, '--model-arg', 'any other constructor argument as KEY=VALUE, '
        'e.g. num_gaussians=100 or shared_interactions=false; repeatable',
        dest='model_kwargs', type=_key_value, action='append',
        metavar='KEY=VALUE')
    g = p.add_argument_group('optimisation')
    opt(g, '--epochs', 'epochs to train (the total, also when resuming)',
        type=int)
    opt(g, '--max-time', 'minutes of training in this call at most (a '
        "resume starts a new budget; 'none': no limit). A run it cuts short "
        'says so: its MAE is not the one of all its epochs',
        type=_optional_float)
    opt(g, '--batch-size', 'structures per batch', type=int)
    opt(g, '--lr', 'learning rate', type=float)
    opt(g, '--weight-decay', 'weight decay; > 0 selects AdamW', type=float)
    opt(g, '--lr-factor', 'learning-rate factor on a plateau', type=float)
    opt(g, '--lr-patience', 'epochs of plateau before the rate drops',
        type=int)
    opt(g, '--min-lr', 'lowest learning rate', type=float)
    opt(g, '--early-stopping', 'stop after this many epochs without '
        'validation improvement', type=int)
    opt(g, '--grad-clip', "gradient-norm clipping ('none': off)",
        type=_optional_float)
    opt(g, '--ema-decay', "EMA decay of the weights ('off': none)",
        type=_optional_float)
    opt(g, '--rho', 'energy weight of the loss when training forces',
        type=float)
    g = p.add_argument_group('hardware')
    opt(g, '--device', 'where to train', choices=['auto', 'cpu', 'cuda'])
    opt(g, '--devices', 'processes/GPUs per node; more than 1 runs DDP',
        type=int)
    opt(g, '--num-nodes', 'nodes (launch with torchrun or SLURM srun)',
        type=int)
    opt(g, '--strategy', "Lightning strategy, e.g. 'ddp'")
    opt(g, '--num-workers', 'data-loader worker processes; None: 0 on a '
        'CPU, 4 on a GPU', type=int)
    g = p.add_argument_group('output')
    g.add_argument('--run-dir', dest='run_dir',
                   help='folder of checkpoints, logs, model and plots '
                   '(default: runs/latest, or runs/latest-2, -3, ... when it '
                   'already holds a run)')
    opt(g, '--no-progress', 'no progress bar', dest='progress',
        action='store_false')
    p.set_defaults(func=_train)


def _next_run_dir(base: str = 'runs/latest') -> str:
    r""":obj:`base`, or the first of :obj:`base-2`, :obj:`base-3`, ... that
    holds no run."""
    from pyg_schnet.train.run import RunPaths
    candidate, k = base, 1
    while RunPaths(candidate).holds_run():
        k += 1
        candidate = f'{base}-{k}'
    return candidate


def _train(args: argparse.Namespace) -> int:
    from pyg_schnet.train.run import resume_config, train

    given = {k: v for k, v in vars(args).items()
             if k not in ('func', 'config', 'resume', 'command', 'threads',
                          'parser')}
    for key in ('model_kwargs', 'loss_weights'):
        if key in given:
            given[key] = dict(given[key])
    values: Dict[str, Any] = {}
    if getattr(args, 'config', None):
        from pyg_schnet.train.config import read_yaml_mapping
        values.update(read_yaml_mapping(args.config))
    values.update(given)
    if getattr(args, 'resume', False):
        run_dir = values.pop('run_dir', _DEFAULTS['run_dir'])
        config = resume_config(run_dir, values)
        train(config, resume=True)
        return 0
    if 'run_dir' not in values:
        values['run_dir'] = _next_run_dir(_DEFAULTS['run_dir'])
        if values['run_dir'] != _DEFAULTS['run_dir']:
            print(f"{_DEFAULTS['run_dir']} already holds a run: this one "
                  f"goes to {values['run_dir']}")
    try:
        config = TrainConfig.from_dict(values)
    except ValueError as e:
        where = f'{args.config}: ' if getattr(args, 'config', None) else ''
        raise ValueError(f'{where}{e}') from None
    train(config)
    return 0


# -- evaluate ----------------------------------------------------------------

def _evaluate_parser(sub, common) -> None:
    p = sub.add_parser(
        'evaluate', parents=[common],
        help="test MAE of a trained model on a run's split",
        description='MAE/RMSE of a trained model: on the split saved in a '
        'run folder, or on every structure of --dataset.')
    p.add_argument('model', help='a run folder, or a model.pt file')
    p.add_argument('--split', choices=['train', 'val', 'test'],
                   default='test', help='which split of the run '
                   '(default: test)')
    p.add_argument('--dataset', help='evaluate on all structures of this '
                   'file instead of the run split')
    p.add_argument('--batch-size', type=_positive_int, default=64,
                   help='structures per batch (default: 64)')
    p.set_defaults(func=_evaluate)


def _print_unseen(model, unseen: Dict[tuple, list], name) -> None:
    from pyg_schnet.models.potential import unseen_elements_message
    for elements, where in unseen.items():
        names = [name(k) for k in where]
        shown = ', '.join(names[:5]) + (f' and {len(names) - 5} more'
                                        if len(names) > 5 else '')
        print(f'warning: {shown}: ' + unseen_elements_message(
            list(elements), model.trained_elements), file=sys.stderr)


def _evaluate(args: argparse.Namespace) -> int:
    from pyg_schnet.train.evaluate import evaluate_trained
    from pyg_schnet.train.locate import load_trained

    model, meta, paths = load_trained(args.model)
    result = evaluate_trained(model, meta, paths, args.split, args.dataset,
                              args.batch_size)
    _print_unseen(model, result['unseen'], lambda k: f'structure {k}')
    target, unit = result['target'], result['unit']
    print(f"{target} MAE: {result[f'{target}_mae']:.4f} {unit}, RMSE: "
          f"{result[f'{target}_rmse']:.4f} {unit} on {result['count']} "
          f"structures of {result['where']}")
    if result['forces']:
        print(f"forces MAE: {result['forces_mae']:.4f} eV/Å, RMSE: "
              f"{result['forces_rmse']:.4f} eV/Å")
    for name, values in result['properties'].items():
        print(f"{name} MAE: {values['mae']:.4f} {values['unit']} "
              f"({values['mae_display']:.4f} {values['display_unit']}), "
              f"RMSE: {values['rmse']:.4f} {values['unit']}")
    return 0


# -- predict -----------------------------------------------------------------

def _predict_parser(sub, common) -> None:
    p = sub.add_parser(
        'predict', parents=[common],
        help='energies (and forces/stress) of structures in a file',
        description='Predict energies (eV), forces (eV/Å) and stress '
        '(eV/Å³) for every structure of an ASE-readable file.')
    p.add_argument('paths', nargs='*', metavar='MODEL STRUCTURES',
                   help='a run folder, model.pt file or pretrained model '
                   'name, then a structure file ASE can read (only the '
                   'structure file with --pretrained)')
    p.add_argument('--pretrained', metavar='NAME',
                   help="use the package's pretrained model NAME (e.g. "
                   'schnet-qm9-U0; --list shows them), never a file of '
                   'that name')
    p.add_argument('--list', action='store_true',
                   help='list the pretrained models with their test error '
                   'and exit')
    p.add_argument('--card', metavar='NAME',
                   help="print a pretrained model's whole card (how it was "
                   'made, its split, its errors) and exit')
    p.add_argument('--forces', action='store_true',
                   help='also predict forces (eV/Å)')
    p.add_argument('--stress', action='store_true',
                   help='stress of periodic structures')
    p.add_argument('--out', help='write the structures, coordinates as in '
                   'the input, with the predictions attached (extxyz, traj, '
                   'db, ...)')
    p.add_argument('--overwrite', action='store_true',
                   help='replace --out if it exists')
    p.add_argument('--batch-size', type=_positive_int, default=32,
                   help='structures per batch (default: 32)')
    p.set_defaults(func=_predict)


def _list_pretrained() -> int:
    from pyg_schnet.models import list_pretrained, pretrained_card
    for name in list_pretrained():
        card = pretrained_card(name)
        print(f"{name}: {card['target']} ({card['unit']}), test MAE "
              f"{card['test_mae_eV']:.4f} eV on {card['test_count']} QM9 "
              f"molecules, {card['epochs_trained']} epochs")
    return 0


def _print_card(name: str) -> int:
    import json

    from pyg_schnet.models import pretrained_card
    card = pretrained_card(name)
    print(f'{name}')
    for key, value in card.items():
        text = json.dumps(value, ensure_ascii=False) \
            if isinstance(value, (dict, list)) else str(value)
        print(f'  {key}: {text}')
    return 0


def _predict(args: argparse.Namespace) -> int:
    if args.list:
        return _list_pretrained()
    if args.card:
        return _print_card(args.card)
    from pyg_schnet.data import read_atoms
    from pyg_schnet.predict import (
        output_format,
        predict_structures,
        write_predictions,
    )
    from pyg_schnet.train.evaluate import unseen_elements
    from pyg_schnet.train.locate import load_trained

    expected = 1 if args.pretrained else 2
    if len(args.paths) != expected:
        raise ValueError('give a model (run folder, model.pt or pretrained '
                         'name) and a structure file, or --pretrained NAME '
                         'and a structure file')
    structures = args.paths[-1]
    fmt = output_format(args.out, args.overwrite, [structures]) \
        if args.out else None
    model, _, _ = load_trained(args.pretrained or args.paths[0],
                               pretrained=bool(args.pretrained))
    images = read_atoms(structures)
    images = images if isinstance(images, list) else [images]
    from pyg_schnet.data import from_ase
    _print_unseen(model, unseen_elements(
        model, [from_ase(a) for a in images]), lambda k: f'structure {k}')
    results = predict_structures(model, images, args.forces, args.stress,
                                 args.batch_size, where=structures)
    dipoles = bool(results) and 'dipole' in results[0]
    print(f"{'#':>5} {'formula':>14} {'energy (eV)':>16}"
          + (f" {'max |F| (eV/Å)':>15}" if args.forces else '')
          + (f" {'|μ| (e·Å)':>10} {'|μ| (D)':>8}" if dipoles else ''))
    for k, (atoms, result) in enumerate(zip(images, results, strict=True)):
        line = f"{k:5d} {atoms.get_chemical_formula():>14} " \
            f"{result['energy']:16.6f}"
        if args.forces:
            f = result['forces']
            line += f' {float((f**2).sum(1).max()**0.5):15.4f}'
        if dipoles:
            from ase.units import Debye
            size = float((result['dipole']**2).sum()**0.5)
            line += f' {size:10.4f} {size / Debye:8.4f}'
        print(line)
    if args.out:
        write_predictions(images, results, args.out, fmt)
        print(f'wrote {len(results)} structures to {args.out}')
    return 0


# -- label -------------------------------------------------------------------

def _label_parser(sub, common) -> None:
    p = sub.add_parser(
        'label', parents=[common],
        help='reference energies/forces from an ASE calculator',
        description='Label structures with a real calculator (EMT, '
        'GFN2-xTB or CHGNet) and write an extxyz/ASE-db dataset, '
        'atomically (CHGNet also writes OUT.card.json: how it was made).')
    p.add_argument('--calculator', choices=['emt', 'xtb', 'chgnet'],
                   required=True,
                   help="ASE's EMT (metals), GFN2-xTB via tblite "
                   '(molecules) or the pretrained CHGNet (crystals across '
                   "the periodic table; pip install -e '.[materials]')")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument('--structures', help='structure file ASE can read')
    src.add_argument('--alloys', type=int, metavar='N',
                     help='N random rattled fcc alloys of Al/Ni/Cu/Pd/Ag/'
                     'Pt/Au (for EMT)')
    src.add_argument('--smiles', nargs='+', help='molecules to embed and '
                     'rattle (for xTB)')
    src.add_argument('--prototypes', type=int, metavar='N',
                     help='N strained, rattled prototype crystals of 61 '
                     'elements (fcc/bcc/hcp/diamond, rock salt, CsCl, zinc '
                     'blende, wurtzite, fluorite, perovskites; for CHGNet)')
    p.add_argument('--per-molecule', type=int, default=10,
                   help='snapshots per SMILES (default: 10)')
    p.add_argument('--rattle', type=_finite_float, default=None,
                   help='displacement in Å (alloys 0.1, molecules and '
                   'prototypes 0.05)')
    p.add_argument('--strain', type=_finite_float, default=0.05,
                   help='prototypes: volume within ±STRAIN (default: 0.05)')
    p.add_argument('--properties', nargs='+', default=['energy', 'forces'],
                   choices=['energy', 'forces', 'stress', 'dipole'],
                   help='what to compute (stress only for periodic '
                   'structures, dipole (e·Å) only for molecules, e.g. with '
                   'xtb; default: energy forces)')
    p.add_argument('--seed', type=int, default=0,
                   help='seed of the generated structures (default: 0)')
    p.add_argument('--out', required=True, help='output file (.extxyz, '
                   '.traj, .db)')
    p.add_argument('--overwrite', action='store_true',
                   help='replace --out if it exists')
    p.set_defaults(func=_label)


def _label(args: argparse.Namespace) -> int:
    from pyg_schnet.data import (
        label_structures,
        make_calculator,
        molecule_snapshots,
        prototype_crystals,
        rattled_alloys,
        read_atoms,
    )
    from pyg_schnet.predict import output_format

    for name in ('alloys', 'per_molecule', 'prototypes'):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be at least "
                             f'1 (got {value})')
    if args.rattle is not None and not args.rattle >= 0:
        raise ValueError(f'--rattle must be a non-negative distance in Å '
                         f'(got {args.rattle})')
    output_format(args.out, args.overwrite, [args.structures])
    if args.structures:
        structures = read_atoms(args.structures)
    elif args.alloys is not None:
        structures = rattled_alloys(args.alloys, rattle=args.rattle or 0.1,
                                    seed=args.seed)
    elif args.prototypes is not None:
        structures = prototype_crystals(
            args.prototypes, strain=args.strain,
            rattle=0.05 if args.rattle is None else args.rattle,
            seed=args.seed)
    else:
        structures = molecule_snapshots(args.smiles, args.per_molecule,
                                        rattle=args.rattle or 0.05,
                                        seed=args.seed)
    if args.calculator == 'chgnet':
        labelled = _label_chgnet(args, structures)
    else:
        labelled = label_structures(structures,
                                    lambda: make_calculator(args.calculator),
                                    args.out, properties=args.properties)
    print(f'wrote {len(labelled)} structures labelled with '
          f'{args.calculator} to {args.out}')
    return 0


def _label_chgnet(args: argparse.Namespace, structures) -> list:
    import json
    import time
    from collections import Counter

    from pyg_schnet.data import chgnet_labels
    from pyg_schnet.io import atomic_write_text
    start = time.perf_counter()

    def progress(done, total):
        if done == total or done % (64 * 16) == 0:
            print(f'  {done}/{total} structures labelled, '
                  f'{time.perf_counter() - start:.0f} s')
    labelled = chgnet_labels(structures, args.out, progress=progress)
    import chgnet
    elements = sorted({s for a in labelled
                       for s in a.get_chemical_symbols()})
    card = {'file': Path(args.out).name, 'structures': len(labelled),
            'atoms': sum(len(a) for a in labelled),
            'labels': 'energy (eV), forces (eV/Å), stress (eV/Å³, ASE '
            'sign) from CHGNet',
            'calculator': f'CHGNet {chgnet.__version__} (the pretrained '
            f'weights inside the wheel, trained on MPtrj)',
            'made_by': 'pyg-schnet ' + ' '.join(sys.argv[1:]),
            'source': 'prototypes' if args.prototypes else
            (args.structures or 'generated'),
            'prototypes': dict(Counter(a.info.get('prototype', '?')
                                       for a in labelled)),
            'elements': elements, 'seed': args.seed,
            'strain': args.strain, 'rattle': args.rattle,
            'seconds': round(time.perf_counter() - start, 1)}
    atomic_write_text(f'{args.out}.card.json',
                      json.dumps(card, indent=2) + '\n')
    return labelled


# -- md ----------------------------------------------------------------------

def _md_parser(sub, common) -> None:
    p = sub.add_parser(
        'md', parents=[common],
        help='(ring-polymer) molecular dynamics with a trained model',
        description='Molecular dynamics with a trained model: classical '
        '(--beads 1) or ring-polymer MD (--beads P > 1, nuclear quantum '
        'effects), of --systems copies of a structure at once. Units: fs, '
        'K, Å, eV. The trajectory and log are written to OUT.partial and '
        'LOG.partial and take their names only when every step is done; a '
        'run stopped early (Ctrl-C, exploding dynamics, an error) leaves '
        'them there.')
    p.add_argument('model', help='a run folder, model.pt file or '
                   'pretrained model name')
    p.add_argument('structure', help='the initial structure (any file ASE '
                   'reads; its last frame)')
    p.add_argument('--steps', type=_positive_int, default=1000,
                   help='time steps (default: 1000)')
    p.add_argument('--dt', type=_positive_float, default=0.5,
                   help='time step in fs (default: 0.5)')
    p.add_argument('--temperature', type=_positive_float, default=300.0,
                   help='temperature in K (default: 300)')
    p.add_argument('--beads', type=_positive_int, default=1,
                   help='ring-polymer beads P (default: 1, classical MD)')
    p.add_argument('--thermostat', choices=['none', 'langevin', 'pile'],
                   default=None, help="'none' (NVE), 'langevin' (P = 1) or "
                   "'pile' (PILE-L, P > 1) (default: langevin for P = 1, "
                   'pile for P > 1)')
    p.add_argument('--tau0', type=_positive_float, default=100.0,
                   help='centroid thermostat time constant in fs '
                   '(default: 100)')
    p.add_argument('--systems', type=_positive_int, default=1,
                   help='independent copies run as one batch (default: 1)')
    p.add_argument('--seed', type=int, default=0,
                   help='random seed (system s gets seed + s; default: 0)')
    p.add_argument('--out', required=True, help='trajectory file (.extxyz '
                   'or .traj): centroids, or all beads with --all-beads')
    p.add_argument('--log', help='log file (default: OUT with .log)')
    p.add_argument('--every', type=_positive_int, default=10,
                   help='steps between written frames and log lines '
                   '(default: 10)')
    p.add_argument('--all-beads', action='store_true',
                   help='write every bead, not only the centroid')
    p.add_argument('--max-drift', type=_optional_float, default=0.1,
                   help='stop when the conserved quantity drifts by more '
                   "than this, in eV per atom and bead ('none': never; "
                   'default: 0.1)')
    p.add_argument('--max-temperature', type=_optional_float, default=None,
                   help='stop above this temperature in K (default: 10 '
                   'times --temperature, more for a few atoms)')
    p.add_argument('--committee', nargs='+', metavar='MODEL', default=[],
                   help='more models (run folders, model files): the '
                   'dynamics follow the mean of MODEL and these, and the log '
                   "gets the committee's energy and largest force "
                   'deviation')
    p.add_argument('--max-force-std', type=_positive_float, default=None,
                   help='with --committee: warn when a force deviation '
                   'passes this many eV/Å')
    p.add_argument('--overwrite', action='store_true',
                   help='replace --out and --log if they exist (once the '
                   'run is complete)')
    p.add_argument('--device', default='cpu', choices=['cpu', 'cuda'],
                   help='where to compute (default: cpu)')
    p.add_argument('--float64', action='store_true',
                   help='compute in double precision')
    p.set_defaults(func=_md)


def _md(args: argparse.Namespace) -> int:
    import time

    import torch

    from pyg_schnet.data import read_atoms
    from pyg_schnet.md import RingPolymerMD
    from pyg_schnet.md.output import check_output_names
    from pyg_schnet.threads import set_threads
    from pyg_schnet.train.locate import load_trained

    log = args.log or str(Path(args.out).with_suffix('.log'))
    check_output_names(args.out, log, [args.structure], args.overwrite)
    if args.device == 'cuda' and not torch.cuda.is_available():
        raise ValueError('--device cuda was asked for, but torch sees no '
                         'CUDA GPU')
    model, _, _ = load_trained(args.model)
    if args.committee:
        from pyg_schnet.models import Committee
        model = Committee([model] + [load_trained(m)[0]
                                     for m in args.committee])
    elif args.max_force_std is not None:
        raise ValueError('--max-force-std needs --committee')
    atoms = read_atoms(args.structure, index=-1)
    from pyg_schnet.data import from_ase
    from pyg_schnet.train.evaluate import unseen_elements
    _print_unseen(model, unseen_elements(model, [from_ase(atoms)]),
                  lambda k: args.structure)
    thermostat = args.thermostat or ('langevin' if args.beads == 1
                                     else 'pile')
    md = RingPolymerMD(model, atoms, beads=args.beads,
                       temperature=args.temperature, timestep=args.dt,
                       thermostat=thermostat, tau0=args.tau0,
                       systems=args.systems, seed=args.seed,
                       device=args.device,
                       dtype=torch.float64 if args.float64 else
                       torch.float32, max_drift=args.max_drift,
                       max_temperature=args.max_temperature,
                       max_force_std=args.max_force_std)
    threads, _ = set_threads(args.threads, md.pairs)
    committee = f', a committee of {1 + len(args.committee)} models' \
        if args.committee else ''
    print(f"{args.systems} x {len(atoms)} atoms{committee}, {args.beads} "
          f"bead{'s' if args.beads > 1 else ''}, {thermostat} at "
          f'{args.temperature} K, {args.steps} steps of {args.dt} fs, '
          f"{threads} thread{'s' if threads > 1 else ''}")
    start = time.perf_counter()
    md.run(args.steps, trajectory=args.out, log=log, every=args.every,
           beads=args.all_beads)
    seconds = time.perf_counter() - start
    obs = md.observables()
    print(f'done: {args.steps * args.dt / 1000:.3f} ps in {seconds:.1f} s '
          f'({1000 * seconds / args.steps:.2f} ms per step); last '
          f"temperature {float(obs['temperature'].mean()):.1f} K")
    print(f'wrote {args.out} and {log}')
    return 0


# -- explain -----------------------------------------------------------------

def _explain_parser(sub, common) -> None:
    p = sub.add_parser(
        'explain', parents=[common],
        help='look inside a trained model: local potentials, '
        'element embeddings, atomic energies (PNGs)',
        description='Pictures of what a trained model learned: the local '
        'chemical potential of a probe atom around a molecule, the '
        'principal components of its element embeddings, or the atomic '
        'energies of a molecule. Units: Å, eV.')
    p.add_argument('what', choices=['potential', 'embeddings', 'atoms'])
    p.add_argument('model', help='a run folder, model.pt file or pretrained '
                   'model name')
    src = p.add_mutually_exclusive_group()
    src.add_argument('--smiles', help='the molecule as SMILES (3-D from '
                     'RDKit, ETKDG + MMFF94, seed 0)')
    src.add_argument('--structure', help='the molecule as a file ASE reads '
                     '(its last frame)')
    p.add_argument('--remove-atom', type=int, action='append', default=[],
                   metavar='INDEX', help='remove this atom first (e.g. a '
                   'hydrogen, to see the vacancy); repeatable')
    p.add_argument('--probe', default='H', help='probe element (default: H)')
    p.add_argument('--surface', default='vdw',
                   choices=['vdw', 'inverse', 'distance-sum'],
                   help="where the probe goes: 'vdw' (--offset Å beyond the "
                   "van-der-Waals surface; default), 'inverse' (level set "
                   "of sum 1/|r - r_i| = --level 1/Å) or 'distance-sum' "
                   '(level set of sum |r - r_i| = --level Å, the surface '
                   'of the thesis; refused when empty)')
    p.add_argument('--offset', type=_finite_float, default=1.0,
                   help='Å beyond the van-der-Waals surface (default: 1.0)')
    p.add_argument('--level', type=_finite_float, default=None,
                   help='level of the inverse (1/Å) or distance-sum (Å) '
                   'surface')
    p.add_argument('--elements', nargs='+', default=None,
                   help='elements for embeddings (default: those the model '
                   'was trained on)')
    p.add_argument('--out', required=True, help='the PNG to write')
    p.add_argument('--overwrite', action='store_true',
                   help='replace --out if it exists')
    p.set_defaults(func=_explain)


def _explain(args: argparse.Namespace) -> int:
    from ase.data import atomic_numbers

    from pyg_schnet import interpret
    from pyg_schnet.interpret.explain import (
        atomic_energy_table,
        explained_molecule,
        potential_extremes,
        probe_surface,
    )
    from pyg_schnet.train.evaluate import unseen_elements
    from pyg_schnet.train.locate import load_trained
    if not args.out.lower().endswith('.png'):
        raise ValueError(f'--out {args.out}: write a .png')
    if Path(args.out).exists() and not args.overwrite:
        raise FileExistsError(f'{args.out} exists; pass --overwrite to '
                              f'replace it')
    model, meta, _ = load_trained(args.model)
    model = model.double()
    label = meta.get('name') or Path(args.model).name
    if args.what == 'embeddings':
        elements = args.elements or model.trained_elements
        if not elements:
            raise ValueError('the model does not record its training '
                             'elements: give --elements')
        result = interpret.element_embeddings(model, elements)
        variance = result['explained_variance'].tolist()
        print(f'principal components of {len(elements)} element '
              f'embeddings: {100 * variance[0]:.1f} % and '
              f'{100 * variance[1]:.1f} % of the variance')
        for symbol, group, (a, b) in zip(result['symbols'], result['groups'],
                                         result['components'].tolist(),
                                         strict=True):
            print(f'  {symbol:>2} (group {group:>2}): {a:+.3f} {b:+.3f}')
        if len(elements) >= 6:
            scores = interpret.embedding_scores(model, elements)
            print(f"nearest neighbour (cosine) in the same group: "
                  f"{100 * scores['same_group']:.1f} % of the elements; "
                  f"random group labels: {100 * scores['null_mean']:.1f} ± "
                  f"{100 * scores['null_std']:.1f} % (p = "
                  f"{scores['p_value']:.3f}, {scores['permutations']} "
                  f'permutations)')
            for group, row in scores['period_correlation'].items():
                print(f"  group {group:>2} ({' '.join(row['elements'])}): "
                      f"Spearman(PC1, period) {row['pc1']:+.2f}, best "
                      f"{row['best']:+.2f} (PC{row['best_component']}; "
                      f"by chance |{row['best_by_chance']:.2f}|)")
        interpret.plot_embeddings(result, args.out,
                                  f'element embeddings of {label}')
        print(f'wrote {args.out}')
        return 0
    data, name = explained_molecule(args.smiles, args.structure,
                                    args.remove_atom)
    _print_unseen(model, unseen_elements(model, [data]), lambda k: name)
    if args.what == 'atoms':
        table = atomic_energy_table(model, data)
        energies = table['absolute']
        print(f'atomic energies of {name} (eV; they sum to the energy, '
              f'{float(energies.sum()):.4f} eV)')
        if table['has_reference']:
            print(f"{'#':>5} {'':>2} {'absolute':>14} {'free atom':>14} "
                  f"{'absolute - free atom':>21}  (the picture shows the "
                  f'last column)')
            for k, (s, a, r, d) in enumerate(zip(
                    table['symbols'], energies.tolist(),
                    table['reference'].tolist(), table['relative'].tolist(),
                    strict=True)):
                print(f'{k:5d} {s:>2} {a:14.4f} {r:14.4f} {d:21.4f}')
        else:
            print(f"{'#':>5} {'':>2} {'absolute':>14}  (no free-atom "
                  f'references in this model: the picture shows these)')
            for k, (s, a) in enumerate(zip(table['symbols'],
                                           energies.tolist(), strict=True)):
                print(f'{k:5d} {s:>2} {a:14.4f}')
        interpret.plot_atomic_energies(
            data, energies, args.out, f'{name}: atomic energies '
            f'({label})', reference=model.atomref
            if model.use_atomref else None)
    else:
        probe = atomic_numbers.get(args.probe)
        if probe is None:
            raise ValueError(f'unknown probe element {args.probe!r}')
        points = probe_surface(data, args.surface, args.offset, args.level)
        omega = interpret.local_potential(model, data, points, probe)
        for row in potential_extremes(data, points, omega):
            print(f"{row['what']} potential {row['value']:.4f} eV, nearest "
                  f"atom {row['atom']}")
        interpret.plot_potential(
            data, points, omega, args.out, f'{name}: {args.probe} probe '
            f'on the {args.surface} surface ({label})', args.probe)
    print(f'wrote {args.out}')
    return 0


# -- the command -------------------------------------------------------------

# -- deploy ------------------------------------------------------------------

def _deploy_parser(sub, common) -> None:
    p = sub.add_parser(
        'deploy', parents=[common],
        help='write a trained model for an MD engine (LAMMPS)',
        description="Write a trained model for LAMMPS' ML-IAP unified "
        "interface (pair_style mliap unified FILE 1), and print the LAMMPS "
        'input lines that run it exactly on any number of MPI ranks. The '
        'file is a Python pickle, as LAMMPS loads Python models: load only '
        'files you made. Units: LAMMPS units metal (Å, eV, ps).')
    p.add_argument('engine', choices=['lammps'])
    p.add_argument('model', help='a run folder, model.pt file or pretrained '
                   'model name')
    p.add_argument('--elements', nargs='+', required=True,
                   help='chemical symbols of the LAMMPS atom types, in '
                   'order (pair_coeff * * ELEMENTS)')
    p.add_argument('--out', required=True, help='the model file to write '
                   '(e.g. model.mliap.pkl)')
    p.add_argument('--dtype', choices=['float64', 'float32'],
                   default='float64',
                   help="the model's precision inside LAMMPS (default: "
                   'float64)')
    p.add_argument('--skin', type=_finite_float, default=2.0,
                   help='neighbour skin in Å of the printed commands '
                   '(default: 2.0)')
    p.add_argument('--overwrite', action='store_true',
                   help='replace --out if it exists')
    p.set_defaults(func=_deploy)


def _deploy(args: argparse.Namespace) -> int:
    from pathlib import Path

    import torch

    from pyg_schnet.md.lammps import (
        lammps_commands,
        receptive_field,
        write_lammps_model,
    )
    from pyg_schnet.train.locate import load_trained

    out = Path(args.out)
    if out.exists() and not args.overwrite:
        raise FileExistsError(f'{out} exists; pass --overwrite to replace '
                              f'it')
    model, _, _ = load_trained(args.model)
    write_lammps_model(model, args.elements, out,
                       getattr(torch, args.dtype))
    print(f'wrote {out} ({type(model).__name__}, receptive field '
          f'{receptive_field(model):g} Å, {args.dtype}); a pickle: load '
          f'only files you made. In the LAMMPS input (units metal), from '
          f'Python after lammps.mliap.activate_mliappy(lmp):')
    for line in lammps_commands(out, model, args.elements, args.skin):
        print(f'  {line}')
    return 0


# -- ipi-client --------------------------------------------------------------

def _ipi_parser(sub, common) -> None:
    p = sub.add_parser(
        'ipi-client', parents=[common],
        help='serve a model\'s forces to a running i-PI server',
        description='Connect to an i-PI server (path-integral MD) and '
        'compute the energies and forces it asks for with a trained model, '
        'until i-PI ends the run. Start as many clients as you like: i-PI '
        'gives each one beads to compute. Units: i-PI converts to ASE\'s '
        '(Å, eV).')
    p.add_argument('model', help='a run folder, model.pt file or pretrained '
                   'model name')
    p.add_argument('structure', help="the atoms i-PI simulates (a file ASE "
                   "reads; i-PI's order of atoms)")
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument('--unix', metavar='NAME',
                       help="i-PI's UNIX socket (<ffsocket mode='unix'>)")
    where.add_argument('--address', metavar='HOST:PORT',
                       help="i-PI's TCP socket (<ffsocket mode='inet'>)")
    p.add_argument('--dtype', choices=['float64', 'float32'],
                   default='float64', help='(default: float64)')
    p.add_argument('--wait', type=_finite_float, default=60.0,
                   help='seconds to wait for the server (default: 60)')
    p.set_defaults(func=_ipi_client)


def _ipi_client(args: argparse.Namespace) -> int:
    import torch

    from pyg_schnet.data.files import read_atoms
    from pyg_schnet.md.ipi import ipi_client
    from pyg_schnet.train.locate import load_trained

    host = port = None
    if args.address:
        host, _, text = args.address.rpartition(':')
        if not host or not text.isdigit():
            raise ValueError(f'--address must be HOST:PORT, got '
                             f'{args.address!r}')
        port = int(text)
    atoms = read_atoms(args.structure, index=-1)
    model, _, _ = load_trained(args.model)
    calls = ipi_client(model, atoms, unixsocket=args.unix, host=host,
                       port=port, dtype=getattr(torch, args.dtype),
                       wait=args.wait)
    print(f'i-PI ended the run; this client computed {calls} force calls')
    return 0


def _version() -> str:
    from pyg_schnet import __version__
    return f'pyg-schnet {__version__}'


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog='pyg-schnet',
        description='SchNet and DTNN for PyTorch Geometric. Units: Å, eV, '
        'eV/Å, eV/Å³.')
    parser.add_argument('--version', action='version', version=_version())
    sub = parser.add_subparsers(dest='command', required=True,
                                parser_class=_Parser)
    common = _common()
    for add in (_train_parser, _evaluate_parser, _predict_parser,
                _label_parser, _md_parser, _explain_parser, _deploy_parser,
                _ipi_parser):
        add(sub, common)
    return parser


def _subparser(parser: argparse.ArgumentParser,
               command: Optional[str]) -> argparse.ArgumentParser:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction) and \
                command in action.choices:
            return action.choices[command]
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    r"""Runs the command; every failure ends in one line
    ``error: ...`` on stderr and a non-zero exit status, never a
    traceback (set ``PYG_SCHNET_DEBUG=1`` to see one)."""
    import warnings

    parser = build_parser()
    args, extras = parser.parse_known_args(argv)
    if extras:
        _subparser(parser, args.command).error(
            _unknown_options(_subparser(parser, args.command), extras))
    debug = os.environ.get('PYG_SCHNET_DEBUG') == '1'
    with warnings.catch_warnings():
        if not debug:  # one line per warning, without source lines
            warnings.showwarning = _show_warning
        try:
            from pyg_schnet.allocator import tune_allocator
            from pyg_schnet.threads import set_threads
            set_threads(args.threads)
            # Large graphs: 2.5x faster (see pyg_schnet.allocator).
            tune_allocator()
            return args.func(args)
        except KeyboardInterrupt as e:
            detail = str(e).strip()
            print(f'error: interrupted{": " + detail if detail else ""}',
                  file=sys.stderr)
            return 130
        except Exception as e:  # the CLI never ends in a traceback
            if debug:
                raise
            print(f'error: {_describe(e)}', file=sys.stderr)
            return 2


def _describe(e: Exception) -> str:
    from pyg_schnet.io import DiskFullError, RunLockedError, disk_full_error
    from pyg_schnet.md import MDRunError

    expected = (ValueError, FileNotFoundError, FileExistsError,
                PermissionError, RunLockedError, ImportError, MemoryError,
                MDRunError, DiskFullError)
    full = None if isinstance(e, DiskFullError) else \
        disk_full_error(e, getattr(e, 'filename', None) or '.')
    if full is not None:
        e = full
    message = str(e).strip() or type(e).__name__
    if isinstance(e, DiskFullError):
        return message
    if isinstance(e, PermissionError) and e.filename:
        return f'permission denied: {e.filename}'
    if isinstance(e, OSError) and e.strerror and e.filename:
        return f'{e.strerror}: {e.filename}'
    if isinstance(e, expected):
        return message
    return (f'unexpected {type(e).__name__}: {message.splitlines()[0]} '
            f'(set PYG_SCHNET_DEBUG=1 for the traceback, and please report '
            f'it)')


def _show_warning(message, category, filename, lineno, file=None,
                  line=None) -> None:
    print(f'warning: {message}', file=sys.stderr)


if __name__ == '__main__':
    sys.exit(main())
