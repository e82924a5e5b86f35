"""The ``pyg-schnet`` command: thin argument parsing over the package."""
import argparse
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional

from pyg_schnet.train.config import TrainConfig

_DEFAULTS = TrainConfig(root='$PYG_SCHNET_DATA or ~/.cache/pyg_schnet')


def _optional_int(text: str) -> Optional[int]:
    return None if text.lower() in ('all', 'none') else int(text)


def _optional_float(text: str) -> Optional[float]:
    return None if text.lower() in ('none', 'off', '0') else float(text)


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
        '1,000 training molecules, at most 11 minutes of training on a CPU, '
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
                   'checkpoint (its saved configuration is used; --epochs '
                   'and --max-time may extend it)')
    g = p.add_argument_group('data')
    opt(g, '--dataset', "'qm9' or a structure file ASE can read (extxyz, "
        'traj, .db, ...)')
    opt(g, '--target', 'per-graph target: a QM9 property (U0, U, H, G, '
        'homo, lumo, gap, zpve, alpha, r2, cv, mu) or a file label; None '
        "means U0 for QM9, 'energy' for files")
    opt(g, '--root', 'dataset cache folder')
    opt(g, '--max-molecules', 'use only the first N structures', type=int)
    opt(g, '--n-train', 'training structures', type=int)
    opt(g, '--n-val', 'validation structures', type=int)
    opt(g, '--n-test', "test structures ('all': the rest)",
        type=_optional_int)
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
    opt(g, '--max-time', "minutes of training at most ('none': no limit)",
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
    opt(g, '--num-workers', 'data-loader worker processes', type=int)
    g = p.add_argument_group('output')
    opt(g, '--run-dir', 'folder of checkpoints, logs, model and plots')
    opt(g, '--no-progress', 'no progress bar', dest='progress',
        action='store_false')
    p.set_defaults(func=_train)


def _train(args: argparse.Namespace) -> int:
    from pyg_schnet.train.run import RunPaths, train

    typed = {k: v for k, v in vars(args).items()
             if k not in ('func', 'config', 'resume', 'command')}
    if 'model_kwargs' in typed:
        typed['model_kwargs'] = dict(typed['model_kwargs'])
    if getattr(args, 'resume', False):
        run_dir = typed.get('run_dir', _DEFAULTS.run_dir)
        saved = RunPaths(run_dir).config
        if not saved.exists():
            raise FileNotFoundError(f'nothing to resume in {run_dir} (no '
                                    f'config.yaml)')
        config = TrainConfig.load(saved)
        for key in ('epochs', 'max_time', 'progress'):
            if key in typed:
                setattr(config, key, typed[key])
        train(config, resume=True)
        return 0
    values: Dict[str, Any] = {}
    if getattr(args, 'config', None):
        values.update(TrainConfig.load(args.config).to_dict())
    values.update(typed)
    train(TrainConfig.from_dict(values))
    return 0


def _load(where: str):
    r"""A trained model from a run folder or a model file: (model,
    metadata, the run's paths or None)."""
    from pyg_schnet.models import load_model
    from pyg_schnet.train.run import RunPaths

    path = Path(where)
    paths = RunPaths(path) if path.is_dir() else None
    model, meta = load_model(paths.model if paths else path)
    return model, meta, paths


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
    p.add_argument('--batch-size', type=int, default=64,
                   help='structures per batch (default: 64)')
    p.set_defaults(func=_evaluate)


def _evaluate(args: argparse.Namespace) -> int:
    import torch
    from torch_geometric.loader import DataLoader

    from pyg_schnet.data import AtomsDataset
    from pyg_schnet.train.datasets import load_dataset
    from pyg_schnet.train.run import evaluate_model

    model, meta, paths = _load(args.model)
    target = meta.get('target', 'energy')
    if args.dataset:
        dataset = AtomsDataset(args.dataset)
        where = args.dataset
    elif paths is not None:
        config = TrainConfig.load(paths.config)
        dataset, _ = load_dataset(config.dataset, config.root, target,
                                  config.max_molecules)
        index = torch.load(paths.split, weights_only=True)[args.split]
        dataset = dataset[index]
        where = f'the {args.split} split of {config.dataset}'
    else:
        raise SystemExit('error: give a run folder, or --dataset with a '
                         'model file')
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
    p.add_argument('model', help='a run folder or a model.pt file')
    p.add_argument('structures', help='structure file ASE can read')
    p.add_argument('--forces', action='store_true',
                   help='also predict forces (eV/Å)')
    p.add_argument('--stress', action='store_true',
                   help='stress of periodic structures')
    p.add_argument('--out', help='write the structures with the '
                   'predictions attached (extxyz, traj, db, ...)')
    p.add_argument('--batch-size', type=int, default=32,
                   help='structures per batch (default: 32)')
    p.set_defaults(func=_predict)


def _predict(args: argparse.Namespace) -> int:
    import ase.io
    from ase.calculators.singlepoint import SinglePointCalculator
    from ase.stress import full_3x3_to_voigt_6_stress
    from torch_geometric.loader import DataLoader

    from pyg_schnet.data import read_structures, to_ase
    from pyg_schnet.data.atomic import atomic_path

    model, meta, _ = _load(args.model)
    structures = read_structures(args.structures)
    images: List = []
    print(f"{'#':>5} {'formula':>14} {'energy (eV)':>16}"
          + (f" {'max |F| (eV/Å)':>15}" if args.forces else ''))
    loader = DataLoader(structures, batch_size=args.batch_size)
    for batch in loader:
        for key in ('energy', 'forces', 'stress'):
            if key in batch:
                del batch[key]
        out = model(batch, forces=args.forces, stress=args.stress)
        out = out if isinstance(out, tuple) else (out, )
        energy, rest = out[0].detach(), list(out[1:])
        forces = rest.pop(0) if args.forces else None
        stress = rest.pop(0) if args.stress else None
        for k, data in enumerate(batch.to_data_list()):
            atoms = to_ase(data)
            results = {'energy': float(energy[k])}
            line = f'{len(images):5d} {atoms.get_chemical_formula():>14} ' \
                f'{results["energy"]:16.6f}'
            if forces is not None:
                f = forces[batch.batch == k].detach().double().numpy()
                results['forces'] = f
                line += f' {float((f**2).sum(1).max()**0.5):15.4f}'
            if stress is not None:
                results['stress'] = full_3x3_to_voigt_6_stress(
                    stress[k].detach().double().numpy())
            atoms.calc = SinglePointCalculator(atoms, **results)
            images.append(atoms)
            print(line)
    if args.out:
        with atomic_path(args.out) as tmp:
            fmt = 'extxyz' if args.out.endswith(('.xyz', '.extxyz')) \
                else None
            ase.io.write(tmp, images, format=fmt)
        print(f'wrote {len(images)} structures to {args.out}')
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
    p.set_defaults(func=_label)


def _label(args: argparse.Namespace) -> int:
    import ase.io

    from pyg_schnet.data import (
        label_structures,
        make_calculator,
        molecule_snapshots,
        rattled_alloys,
    )

    if args.structures:
        structures = ase.io.read(args.structures, index=':')
    elif args.alloys:
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
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError, FileExistsError) as e:
        print(f'error: {e}', file=sys.stderr)
        return 2


if __name__ == '__main__':
    sys.exit(main())

