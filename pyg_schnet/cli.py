"""The ``pyg-schnet`` command: thin argument parsing over the package."""
import argparse
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

from pyg_schnet.train.config import TrainConfig

_DEFAULTS = TrainConfig(root='$PYG_SCHNET_DATA or ~/.cache/pyg_schnet')


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


def _train_parser(sub) -> None:
    p = sub.add_parser(
        'train', help='train SchNet/DTNN on QM9 or on any ASE-readable file',
        description='Train a model. With no options: SchNet on QM9 U0, '
        '10,000 training molecules, at most 11 minutes of training on a CPU, '
        'then the test MAE in eV. Options override the YAML file given with '
        '--config (same keys, with underscores), which overrides the '
        'defaults; the resolved configuration is saved as '
        'RUN_DIR/config.yaml.',
        argument_default=argparse.SUPPRESS)
    d = _DEFAULTS

    def opt(group, flag, help, **kwargs):
        field = kwargs.pop('dest', flag[2:].replace('-', '_'))
        default = getattr(d, field)
        if not kwargs.get('action'):
            help = f'{help} (default: {default})'
        group.add_argument(flag, dest=field, help=help, **kwargs)

    p.add_argument('--config', help='YAML file of options')
    p.add_argument('--resume', action='store_true',
                   help='continue the run in --run-dir from its last '
                   'checkpoint with its saved configuration; only --epochs, '
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
                   '0.8 or 80%% (default: QM9 1000, files 80%%)')
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
    opt(g, '--epochs', 'maximum epochs', type=int)
    opt(g, '--max-time', 'minutes of training in this call at most (a '
        "resume starts a new budget; 'none': no limit)",
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
    opt(g, '--run-dir', 'folder of checkpoints, logs, model and plots')
    opt(g, '--no-progress', 'no progress bar', dest='progress',
        action='store_false')
    p.set_defaults(func=_train)


def _train(args: argparse.Namespace) -> int:
    from pyg_schnet.train.run import resume_config, train

    given = {k: v for k, v in vars(args).items()
             if k not in ('func', 'config', 'resume', 'command')}
    if 'model_kwargs' in given:
        given['model_kwargs'] = dict(given['model_kwargs'])
    values: Dict[str, Any] = {}
    if getattr(args, 'config', None):
        from pyg_schnet.train.config import read_yaml_mapping
        values.update(read_yaml_mapping(args.config))
    values.update(given)
    if getattr(args, 'resume', False):
        run_dir = values.pop('run_dir', _DEFAULTS.run_dir)
        config = resume_config(run_dir, values)
        train(config, resume=True)
        return 0
    try:
        config = TrainConfig.from_dict(values)
    except ValueError as e:
        where = f'{args.config}: ' if getattr(args, 'config', None) else ''
        raise ValueError(f'{where}{e}') from None
    train(config)
    return 0


def _read_atoms(path: str, index=':'):
    r"""The structures of a file ASE reads (:obj:`index` as in
    :func:`ase.io.read`), with errors naming the file."""
    import ase.io
    if not Path(path).exists():
        raise FileNotFoundError(f'no such structure file: {path}')
    try:
        return ase.io.read(path, index=index)
    except Exception as e:  # ASE raises many types for bad files
        raise ValueError(f'ASE cannot read {path}: {e}') from e


def _load(where: str):
    r"""A trained model from a run folder or a model file: (model,
    metadata, the run's paths or None)."""
    from pyg_schnet.models import load_model
    from pyg_schnet.train.run import RunPaths

    path = Path(where)
    if not path.exists():
        from pyg_schnet.models import list_pretrained, load_pretrained
        if where in list_pretrained():
            model, meta = load_pretrained(where)
            return model, meta, None
        raise FileNotFoundError(
            f'no run folder, model file or pretrained model {where!r} '
            f"(pretrained: {', '.join(list_pretrained()) or 'none'})")
    paths = RunPaths(path) if path.is_dir() else None
    if paths is not None and not paths.model.exists():
        raise FileNotFoundError(
            f'{where} has no model.pt: it is not a finished run (resume it '
            f'with pyg-schnet train --resume --run-dir {where})')
    model, meta = load_model(paths.model if paths else path)
    return model, meta, paths


def _warn_unseen(model, structures, names) -> None:
    r"""Prints which structures hold elements the model was not trained
    on."""
    from pyg_schnet.models.potential import unseen_elements_message

    trained = model.trained_elements
    if trained is None:
        return
    bad = {}
    for k, data in enumerate(structures):
        unseen = sorted(set(data.z.tolist()) - set(trained))
        if unseen:
            bad.setdefault(tuple(unseen), []).append(names(k))
    for unseen, where in bad.items():
        shown = ', '.join(where[:5]) + (f' and {len(where) - 5} more'
                                        if len(where) > 5 else '')
        print(f'warning: {shown}: ' + unseen_elements_message(
            list(unseen), trained), file=sys.stderr)


def _evaluate_parser(sub) -> None:
    p = sub.add_parser(
        'evaluate', help="test MAE of a trained model on a run's split",
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


def _positive(kind):
    r"""An argparse type: a positive :obj:`kind` (int or float)."""
    name = 'integer' if kind is int else 'number'

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected a positive {name}, got '{text}'") from None
        if not value > 0:
            raise argparse.ArgumentTypeError(
                f'expected a positive {name}, got {value}')
        return value
    return parse


_positive_int = _positive(int)
_positive_float = _positive(float)


def _evaluate(args: argparse.Namespace) -> int:
    from torch_geometric.loader import DataLoader

    from pyg_schnet.data import AtomsDataset
    from pyg_schnet.train.datasets import (
        dataset_fingerprint,
        load_dataset,
        load_split,
        read_split,
    )
    from pyg_schnet.train.evaluate import evaluate_model

    model, meta, paths = _load(args.model)
    target = meta.get('target', 'energy')
    if args.dataset:
        dataset = AtomsDataset(args.dataset)
        where = args.dataset
        if target not in dataset[0]:
            raise ValueError(f"{args.dataset} has no '{target}' labels to "
                             f'evaluate the model against')
    elif paths is not None:
        config = TrainConfig.load(paths.config)
        if config.dataset.lower() != 'qm9' and \
                not Path(config.dataset).exists():
            raise FileNotFoundError(
                f'the dataset of this run, {config.dataset}, does not exist '
                f'(moved?); evaluate on a file with --dataset')
        dataset, _ = load_dataset(config.dataset, config.root, target,
                                  config.max_molecules)
        saved = read_split(paths.split).get('fingerprint')
        if saved is not None and saved != dataset_fingerprint(dataset,
                                                              target):
            raise ValueError(f'{config.dataset} is not the dataset this run '
                             f'was trained on (it changed since)')
        split = dict(zip(('train', 'val', 'test'),
                         load_split(paths.split, len(dataset)), strict=True))
        dataset = dataset[split[args.split]]
        where = f'the {args.split} split of {config.dataset}'
    else:
        raise ValueError('give a run folder, or --dataset with a model file')
    _warn_unseen(model, dataset, lambda k: f'structure {k}')
    forces = bool(meta.get('forces')) and 'forces' in dataset[0]
    result = evaluate_model(model, DataLoader(dataset,
                                              batch_size=args.batch_size),
                            target, forces)
    unit = meta.get('unit', '')
    print(f"{target} MAE: {result[f'{target}_mae']:.4f} {unit}, RMSE: "
          f"{result[f'{target}_rmse']:.4f} {unit} on {result['count']} "
          f'structures of {where}')
    if forces:
        print(f"forces MAE: {result['forces_mae']:.4f} eV/Å, RMSE: "
              f"{result['forces_rmse']:.4f} eV/Å")
    return 0


def _predict_parser(sub) -> None:
    p = sub.add_parser(
        'predict', help='energies (and forces/stress) of structures in a file',
        description='Predict energies (eV), forces (eV/Å) and stress '
        '(eV/Å³) for every structure of an ASE-readable file.')
    p.add_argument('paths', nargs='*', metavar='MODEL STRUCTURES',
                   help='a run folder, model.pt file or pretrained model '
                   'name, then a structure file ASE can read (only the '
                   'structure file with --pretrained)')
    p.add_argument('--pretrained', metavar='NAME',
                   help='use a pretrained model shipped with the package '
                   '(e.g. schnet-qm9-U0; --list shows them)')
    p.add_argument('--list', action='store_true',
                   help='list the pretrained models with their test error '
                   'and exit')
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


def _output_format(path: str, overwrite: bool = False,
                   inputs: Sequence[str] = ()) -> str:
    r"""The ASE format that :obj:`path` will be written in, checked before
    any work is done, with the file's safety: an existing file is replaced
    only with :obj:`overwrite`, an input file never."""
    from ase.io.formats import filetype, ioformats

    target = Path(path)
    for source in inputs:
        if source and target.exists() and Path(source).exists() and \
                target.resolve() == Path(source).resolve():
            raise ValueError(f'--out {path} is the input file; write the '
                             f'results to another file')
    if target.exists() and not overwrite:
        raise FileExistsError(f'{path} exists; pass --overwrite to replace '
                              f'it')

    suffix = Path(path).suffix.lower()
    if suffix in ('.xyz', '.extxyz'):
        return 'extxyz'
    try:
        fmt = filetype(path, read=False)
    except Exception:
        fmt = None
    if fmt is None or fmt not in ioformats or not ioformats[fmt].can_write:
        raise ValueError(f"cannot write '{path}': ASE knows no writable "
                         f'format for the suffix {suffix or "(none)"!r} '
                         f'(use .extxyz, .traj or .db)')
    return fmt


def _list_pretrained() -> int:
    from pyg_schnet.models import list_pretrained, pretrained_card
    for name in list_pretrained():
        card = pretrained_card(name)
        print(f"{name}: {card['target']} ({card['unit']}), test MAE "
              f"{card['test_mae_eV']:.4f} eV on {card['test_count']} QM9 "
              f"molecules, {card['epochs_trained']} epochs")
    return 0


def _predict(args: argparse.Namespace) -> int:
    if args.list:
        return _list_pretrained()
    import ase.io
    from ase.calculators.singlepoint import SinglePointCalculator
    from ase.stress import full_3x3_to_voigt_6_stress
    from torch_geometric.loader import DataLoader

    from pyg_schnet.data import from_ase
    from pyg_schnet.io import atomic_path

    expected = 1 if args.pretrained else 2
    if len(args.paths) != expected:
        raise ValueError('give a model (run folder, model.pt or pretrained '
                         'name) and a structure file, or --pretrained NAME '
                         'and a structure file')
    args.structures = args.paths[-1]
    fmt = _output_format(args.out, args.overwrite, [args.structures]) \
        if args.out else None
    model, meta, _ = _load(args.pretrained or args.paths[0])
    images = _read_atoms(args.structures)
    images = images if isinstance(images, list) else [images]
    dtype = next(model.parameters()).dtype
    structures = []
    for k, atoms in enumerate(images):
        try:
            structures.append(from_ase(atoms, dtype=dtype))
        except ValueError as e:
            raise ValueError(f'{args.structures}, structure {k}: {e}') \
                from None
        if args.stress and not atoms.pbc.any():
            raise ValueError(f'{args.structures}, structure {k}: --stress '
                             f'needs periodic structures; this one has no '
                             f'periodic direction')
    _warn_unseen(model, structures, lambda k: f'structure {k}')
    for data in structures:
        for key in ('energy', 'forces', 'stress'):
            if key in data:
                del data[key]
    out_images: List = []
    print(f"{'#':>5} {'formula':>14} {'energy (eV)':>16}"
          + (f" {'max |F| (eV/Å)':>15}" if args.forces else ''))
    import warnings
    for batch in DataLoader(structures, batch_size=args.batch_size):
        with warnings.catch_warnings():  # reported per structure above
            warnings.filterwarnings('ignore', message='elements .* were not')
            out = model(batch, forces=args.forces, stress=args.stress)
        out = out if isinstance(out, tuple) else (out, )
        energy, rest = out[0].detach(), list(out[1:])
        forces = rest.pop(0) if args.forces else None
        stress = rest.pop(0) if args.stress else None
        for k in range(batch.num_graphs):
            atoms = images[len(out_images)].copy()  # input coordinates kept
            results = {'energy': float(energy[k])}
            line = f'{len(out_images):5d} ' \
                f'{atoms.get_chemical_formula():>14} ' \
                f'{results["energy"]:16.6f}'
            if forces is not None:
                f = forces[batch.batch == k].detach().double().numpy()
                results['forces'] = f
                line += f' {float((f**2).sum(1).max()**0.5):15.4f}'
            if stress is not None:
                results['stress'] = full_3x3_to_voigt_6_stress(
                    stress[k].detach().double().numpy())
            atoms.calc = SinglePointCalculator(atoms, **results)
            out_images.append(atoms)
            print(line)
    if args.out:
        with atomic_path(args.out) as tmp:
            ase.io.write(tmp, out_images, format=fmt)
        print(f'wrote {len(out_images)} structures to {args.out}')
    return 0


def _label_parser(sub) -> None:
    p = sub.add_parser(
        'label', help='reference energies/forces from an ASE calculator',
        description='Label structures with a real calculator (EMT or '
        'GFN2-xTB) and write an extxyz/ASE-db dataset, atomically.')
    p.add_argument('--calculator', choices=['emt', 'xtb'], required=True,
                   help="ASE's EMT (metals) or GFN2-xTB via tblite "
                   '(molecules)')
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument('--structures', help='structure file ASE can read')
    src.add_argument('--alloys', type=int, metavar='N',
                     help='N random rattled fcc alloys of Al/Ni/Cu/Pd/Ag/'
                     'Pt/Au (for EMT)')
    src.add_argument('--smiles', nargs='+', help='molecules to embed and '
                     'rattle (for xTB)')
    p.add_argument('--per-molecule', type=int, default=10,
                   help='snapshots per SMILES (default: 10)')
    p.add_argument('--rattle', type=float, default=None,
                   help='displacement in Å (alloys 0.1, molecules 0.05)')
    p.add_argument('--properties', nargs='+', default=['energy', 'forces'],
                   choices=['energy', 'forces', 'stress'],
                   help='what to compute (stress only for periodic '
                   'structures; default: energy forces)')
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
        rattled_alloys,
    )

    for name in ('alloys', 'per_molecule'):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be at least "
                             f'1 (got {value})')
    if args.rattle is not None and not args.rattle >= 0:
        raise ValueError(f'--rattle must be a non-negative distance in Å '
                         f'(got {args.rattle})')
    _output_format(args.out, args.overwrite, [args.structures])
    if args.structures:
        structures = _read_atoms(args.structures)
    elif args.alloys is not None:
        structures = rattled_alloys(args.alloys, rattle=args.rattle or 0.1,
                                    seed=args.seed)
    else:
        structures = molecule_snapshots(args.smiles, args.per_molecule,
                                        rattle=args.rattle or 0.05,
                                        seed=args.seed)
    labelled = label_structures(structures,
                                lambda: make_calculator(args.calculator),
                                args.out, properties=args.properties)
    print(f'wrote {len(labelled)} structures labelled with '
          f'{args.calculator} to {args.out}')
    return 0


def _md_parser(sub) -> None:
    p = sub.add_parser(
        'md', help='(ring-polymer) molecular dynamics with a trained model',
        description='Molecular dynamics with a trained model: classical '
        '(--beads 1) or ring-polymer MD (--beads P > 1, nuclear quantum '
        'effects), of --systems copies of a structure at once. Units: fs, '
        'K, Å, eV.')
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
    p.add_argument('--overwrite', action='store_true',
                   help='replace --out and --log if they exist')
    p.add_argument('--device', default='cpu', choices=['cpu', 'cuda'],
                   help='where to compute (default: cpu)')
    p.add_argument('--float64', action='store_true',
                   help='compute in double precision')
    p.set_defaults(func=_md)


def _md(args: argparse.Namespace) -> int:
    import torch

    from pyg_schnet.md import RingPolymerMD

    log = args.log or str(Path(args.out).with_suffix('.log'))
    if not args.out.endswith(('.extxyz', '.xyz', '.traj')):
        raise ValueError(f'--out {args.out}: the trajectory must end in '
                         f'.extxyz, .xyz or .traj')
    for path in (args.out, log):
        if Path(path).exists() and not args.overwrite:
            raise FileExistsError(f'{path} exists; pass --overwrite to '
                                  f'replace it')
    if args.device == 'cuda' and not torch.cuda.is_available():
        raise ValueError('--device cuda was asked for, but torch sees no '
                         'CUDA GPU')
    model, _, _ = _load(args.model)
    atoms = _read_atoms(args.structure, index=-1)
    from pyg_schnet.data import from_ase
    _warn_unseen(model, [from_ase(atoms)], lambda k: args.structure)
    thermostat = args.thermostat or ('langevin' if args.beads == 1
                                     else 'pile')
    md = RingPolymerMD(model, atoms, beads=args.beads,
                       temperature=args.temperature, timestep=args.dt,
                       thermostat=thermostat, tau0=args.tau0,
                       systems=args.systems, seed=args.seed,
                       device=args.device,
                       dtype=torch.float64 if args.float64 else
                       torch.float32)
    print(f'{args.systems} x {len(atoms)} atoms, {args.beads} beads, '
          f'{thermostat} at {args.temperature} K, {args.steps} steps of '
          f'{args.dt} fs')
    import time
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


def _explain_parser(sub) -> None:
    p = sub.add_parser(
        'explain', help='look inside a trained model: local potentials, '
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
    p.add_argument('--offset', type=float, default=1.0,
                   help='Å beyond the van-der-Waals surface (default: 1.0)')
    p.add_argument('--level', type=float, default=None,
                   help='level of the inverse (1/Å) or distance-sum (Å) '
                   'surface')
    p.add_argument('--elements', nargs='+', default=None,
                   help='elements for embeddings (default: those the model '
                   'was trained on)')
    p.add_argument('--out', required=True, help='the PNG to write')
    p.add_argument('--overwrite', action='store_true',
                   help='replace --out if it exists')
    p.set_defaults(func=_explain)


def _explain_molecule(args: argparse.Namespace):
    import torch

    from pyg_schnet.data import from_ase, from_smiles
    if args.smiles:
        data = from_smiles(args.smiles, seed=0, dtype=torch.float64)
        name = args.smiles
    elif args.structure:
        atoms = _read_atoms(args.structure, index=-1)
        data = from_ase(atoms, torch.float64)
        name = Path(args.structure).name
    else:
        raise ValueError('give the molecule with --smiles or --structure')
    if args.remove_atom:
        keep = torch.ones(data.num_nodes, dtype=torch.bool)
        for k in args.remove_atom:
            if not 0 <= k < data.num_nodes:
                raise ValueError(f'--remove-atom {k}: the molecule has atoms '
                                 f'0..{data.num_nodes - 1}')
            keep[k] = False
        data = from_ase(_atoms_of(data, keep), torch.float64)
        name += f' without atom {", ".join(map(str, args.remove_atom))}'
    return data, name


def _atoms_of(data, keep):
    from ase import Atoms
    return Atoms(numbers=data.z[keep].numpy(),
                 positions=data.pos[keep].numpy())


def _explain(args: argparse.Namespace) -> int:
    from ase.data import atomic_numbers, chemical_symbols

    from pyg_schnet import interpret
    if not args.out.lower().endswith('.png'):
        raise ValueError(f'--out {args.out}: write a .png')
    if Path(args.out).exists() and not args.overwrite:
        raise FileExistsError(f'{args.out} exists; pass --overwrite to '
                              f'replace it')
    model, meta, _ = _load(args.model)
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
        interpret.plot_embeddings(result, args.out,
                                  f'element embeddings of {label}')
    else:
        data, name = _explain_molecule(args)
        _warn_unseen(model, [data], lambda k: name)
        if args.what == 'atoms':
            energies = interpret.atomic_energies(model, data)
            print(f'atomic energies of {name} (eV; sum '
                  f'{float(energies.sum()):.4f} eV):')
            for k, (z, e) in enumerate(zip(data.z.tolist(),
                                           energies.tolist(), strict=True)):
                print(f'  {k:3d} {chemical_symbols[z]:>2} {e:14.4f}')
            interpret.plot_atomic_energies(
                data, energies, args.out, f'{name}: atomic energies '
                f'({label})', reference=model.atomref
                if model.use_atomref else None)
        else:
            probe = atomic_numbers.get(args.probe)
            if probe is None:
                raise ValueError(f'unknown probe element {args.probe!r}')
            if args.surface == 'vdw':
                points = interpret.vdw_surface(data, offset=args.offset,
                                               density=6.0)
            elif args.level is None:
                raise ValueError(f'--surface {args.surface} needs --level')
            elif args.surface == 'inverse':
                points = interpret.inverse_distance_surface(data, args.level)
            else:
                points = interpret.distance_sum_surface(data, args.level)
            omega = interpret.local_potential(model, data, points, probe)
            _report_extremes(data, points, omega)
            interpret.plot_potential(
                data, points, omega, args.out, f'{name}: {args.probe} probe '
                f'on the {args.surface} surface ({label})', args.probe)
    print(f'wrote {args.out}')
    return 0


def _report_extremes(data, points, omega) -> None:
    from ase.data import chemical_symbols
    for what, k in (('lowest', int(omega.argmin())),
                    ('highest', int(omega.argmax()))):
        nearest = int((data.pos - points[k]).norm(dim=-1).argmin())
        print(f'{what} potential {float(omega[k]):.4f} eV, nearest atom '
              f'{chemical_symbols[int(data.z[nearest])]}{nearest}')


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog='pyg-schnet',
        description='SchNet and DTNN for PyTorch Geometric. Units: Å, eV, '
        'eV/Å, eV/Å³.')
    sub = parser.add_subparsers(dest='command', required=True)
    _train_parser(sub)
    _evaluate_parser(sub)
    _predict_parser(sub)
    _label_parser(sub)
    _md_parser(sub)
    _explain_parser(sub)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    r"""Runs the command; every failure ends in one line
    ``error: ...`` on stderr and a non-zero exit status, never a
    traceback (set ``PYG_SCHNET_DEBUG=1`` to see one)."""
    import os
    import warnings

    from pyg_schnet.allocator import tune_allocator

    parser = build_parser()
    args = parser.parse_args(argv)
    tune_allocator()  # large graphs: 2.5x faster (see pyg_schnet.allocator)
    debug = os.environ.get('PYG_SCHNET_DEBUG') == '1'
    with warnings.catch_warnings():
        if not debug:  # one line per warning, without source lines
            warnings.showwarning = _show_warning
        try:
            return args.func(args)
        except KeyboardInterrupt:
            print('error: interrupted', file=sys.stderr)
            return 130
        except Exception as e:  # the CLI never ends in a traceback
            if debug:
                raise
            print(f'error: {_describe(e)}', file=sys.stderr)
            return 2


def _describe(e: Exception) -> str:
    from pyg_schnet.io import RunLockedError

    expected = (ValueError, FileNotFoundError, FileExistsError,
                PermissionError, RunLockedError, ImportError)
    message = str(e).strip() or type(e).__name__
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
