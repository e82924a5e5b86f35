"""The thesis' C20 study, end to end on a CPU: GFN2-xTB reference data,
a SchNet trained on energies and forces, classical (P = 1) and
ring-polymer (P = 8) MD at 300 K, the C-C distance distributions of both,
and the speed of the learned potential against xTB and DFT.

    .venv/bin/python examples/c20_rpmd/run.py [--out runs/examples/c20]

With the thesis' own network, the original SchNet code's C20 force_model
(a folder of that code; here ../shared/c20-thesis-model):

    .venv/bin/python examples/c20_rpmd/run.py --model original \
        ../shared/c20-thesis-model --out runs/examples/c20

relaxes C20 with it (to a minimum, checked with the model's Hessian),
runs RPMD at 300 K, 0.5 fs, PILE-L, P = 1 and P = 8 (--rpmd-steps), and
writes distances_original.png and summary_original.json.

Every stage writes into --out (default ``runs/examples/c20``, which git
ignores) and is skipped when its output exists, so an interrupted run
continues where it stopped. About an hour on 2 CPU cores with the
defaults; sizes are options (see --help). Units: Å, eV, eV/Å, fs, K.

Stages:
1. ``reference``: C20 (a dodecahedral cage, relaxed with GFN2-xTB via
   ``tblite``), Langevin MD with xTB at 300 K and 1,000 K; every
   ``--stride``-th frame is kept with its xTB energy and forces
   (``c20_xtb.extxyz``).
2. ``train``: ``pyg-schnet train --dataset c20_xtb.extxyz`` with forces
   (ρ = 0.01), 80/10/10 % split, SchNet with F = 64 features and T = 3
   interactions (the RPMD step budget); test energy and force MAE.
3. ``rpmd``: RPMD at 300 K, 0.5 fs, PILE-L, P = 1 and P = 8; C-C
   distances of every bead (the quantum distribution) after
   equilibration; widths; ``distances.png``.
4. ``speed``: one force call of the trained SchNet, of GFN2-xTB and of
   PySCF's PBE/6-31G gradient, and one RPMD step with P = 8.
The numbers go to ``summary.json``.
"""
import argparse
import json
import time
from pathlib import Path

import numpy as np
from ase import Atoms, units

PHI = (1 + 5**0.5) / 2


def c20(bond: float = 1.45) -> Atoms:
    r"""The 20 vertices of a regular dodecahedron with edges of
    :obj:`bond` Å."""
    v = [(a, b, c) for a in (-1, 1) for b in (-1, 1) for c in (-1, 1)]
    for a in (-1, 1):
        for b in (-1, 1):
            v += [(0, a / PHI, b * PHI), (a / PHI, b * PHI, 0),
                  (a * PHI, 0, b / PHI)]
    return Atoms('C20', positions=np.array(v) * bond / (2 / PHI))


def xtb():
    from tblite.ase import TBLite
    return TBLite(method='GFN2-xTB', verbosity=0)


def relaxed_c20(out: Path) -> Atoms:
    import ase.io
    from ase.optimize import BFGS
    path = out / 'c20_relaxed.extxyz'
    if path.exists():
        return ase.io.read(path)
    atoms = c20()
    atoms.calc = xtb()
    BFGS(atoms, logfile=None).run(fmax=1e-3, steps=500)
    _write(path, [atoms])
    return atoms


def reference(out: Path, steps: int, stride: int, seed: int) -> Path:
    from ase.calculators.singlepoint import SinglePointCalculator
    from ase.md.langevin import Langevin
    from ase.md.velocitydistribution import MaxwellBoltzmannDistribution
    path = out / 'c20_xtb.extxyz'
    if path.exists():
        return path
    frames = []
    start = time.perf_counter()
    for temperature in (300.0, 1000.0):
        atoms = relaxed_c20(out).copy()
        atoms.calc = xtb()
        rng = np.random.default_rng(seed + int(temperature))
        MaxwellBoltzmannDistribution(atoms, temperature_K=temperature,
                                     rng=rng)
        dyn = Langevin(atoms, 1.0 * units.fs, temperature_K=temperature,
                       friction=0.02, rng=rng)

        def keep(atoms=atoms, temperature=temperature):
            frame = atoms.copy()
            frame.calc = SinglePointCalculator(
                frame, energy=atoms.get_potential_energy(),
                forces=atoms.get_forces())
            frame.info['temperature_K'] = temperature
            frames.append(frame)
        dyn.run(200)  # equilibrate
        dyn.attach(keep, interval=stride)
        dyn.run(steps)
        print(f'  xTB MD at {temperature:.0f} K: {len(frames)} frames so '
              f'far, {time.perf_counter() - start:.0f} s')
    _write(path, frames)
    return path


def train(out: Path, dataset: Path, epochs: int, max_time: float,
          features: int, interactions: int) -> dict:
    from pyg_schnet.cli import main
    run = out / 'schnet'
    if not (run / 'results.json').exists():
        args = ['train', '--dataset', str(dataset), '--root',
                str(out / 'cache'), '--run-dir', str(run), '--epochs',
                str(epochs), '--max-time', str(max_time), '--batch-size',
                '16', '--lr', '5e-4', '--rho', '0.01', '--features',
                str(features), '--interactions', str(interactions),
                '--no-progress']
        if (run / 'config.yaml').exists():
            args = ['train', '--resume', '--run-dir', str(run),
                    '--no-progress']
        print('  pyg-schnet ' + ' '.join(args))
        if main(args) != 0:
            raise SystemExit('training failed')
    return json.loads((run / 'results.json').read_text())


def rpmd(out: Path, beads: int, steps: int, equilibration: int,
         model=None, start=None, tag: str = '') -> dict:
    r"""RPMD of C20 at 300 K (0.5 fs, PILE-L; Langevin for P = 1): the
    190 pair distances of every bead every 10 steps after
    :obj:`equilibration` steps (``rpmd{tag}_P{beads}.npz``, skipped when
    it exists)."""
    import torch

    from pyg_schnet.md import RingPolymerMD
    from pyg_schnet.models import load_model
    path = out / f'rpmd{tag}_P{beads}.npz'
    if path.exists():
        return dict(np.load(path))
    if model is None:
        model, _ = load_model(out / 'schnet' / 'model.pt')
    md = RingPolymerMD(model, start if start is not None else
                       relaxed_c20(out), beads=beads,
                       temperature=300.0, timestep=0.5,
                       thermostat='pile' if beads > 1 else 'langevin',
                       tau0=100.0, seed=beads, dtype=torch.float32)
    for _ in range(equilibration):
        md.step()
    distances = []
    pairs = np.triu_indices(20, 1)
    start_time = time.perf_counter()
    for k in range(steps):
        md.step()
        if k % 10 == 0:
            q = md.q[0].double().numpy()  # [P, 20, 3], every bead
            d = np.linalg.norm(q[:, :, None] - q[:, None], axis=-1)
            distances.append(d[:, pairs[0], pairs[1]].astype(np.float32))
    seconds = time.perf_counter() - start_time
    pair_distances = np.concatenate(distances)  # [samples * P, 190]
    flat = pair_distances.ravel()
    result = dict(distances=flat, bonds=flat[flat < 1.8],
                  pair_distances=pair_distances,
                  ms_per_step=np.array(1000 * seconds / steps),
                  simulated_ps=np.array(steps * 0.5 / 1000),
                  threads=np.array(torch.get_num_threads()))
    _save(path, result)
    return result


def speed(out: Path, dft: bool) -> dict:
    import torch

    from pyg_schnet.md import RingPolymerMD, SchNetCalculator
    from pyg_schnet.models import load_model
    path = out / 'speed.json'
    if path.exists():
        return json.loads(path.read_text())
    atoms = relaxed_c20(out).copy()
    atoms.rattle(0.02, seed=0)
    model, _ = load_model(out / 'schnet' / 'model.pt')
    timings = {}

    def timed(calc, repeat):
        values = []
        for k in range(repeat):
            a = atoms.copy()
            a.rattle(0.01, seed=k + 1)
            a.calc = calc
            begin = time.perf_counter()
            a.get_forces()
            values.append(time.perf_counter() - begin)
        return float(np.median(values))
    timings['schnet_s'] = timed(SchNetCalculator(model), 50)
    timings['xtb_s'] = timed(xtb(), 20)
    if dft:
        try:
            from pyscf import dft as pyscf_dft
            from pyscf import gto
        except ImportError:
            raise SystemExit('the DFT timing needs PySCF: pip install -e '
                             '".[dft]" (or pass --no-dft)') from None
        mol = gto.M(atom=[(s, p) for s, p in zip(
            atoms.get_chemical_symbols(), atoms.positions, strict=True)],
            basis='6-31g', unit='Angstrom', verbose=0)
        begin = time.perf_counter()
        mf = pyscf_dft.RKS(mol, xc='pbe')
        mf.kernel()
        mf.nuc_grad_method().kernel()
        timings['dft_pbe_631g_s'] = time.perf_counter() - begin
    md = RingPolymerMD(model, relaxed_c20(out), beads=8, temperature=300.0,
                       timestep=0.5, dtype=torch.float32)
    for _ in range(20):
        md.step()
    begin = time.perf_counter()
    for _ in range(200):
        md.step()
    timings['rpmd_p8_step_ms'] = 1000 * (time.perf_counter() - begin) / 200
    timings['threads'] = torch.get_num_threads()
    _write_text(path, json.dumps(timings, indent=2) + '\n')
    return timings


def original_models(path: Path) -> Path:
    r"""The original code's ``force_model`` folder under :obj:`path` (the
    folder itself, its ``original/`` or the shared folder above it)."""
    for candidate in (path, path / 'force_model',
                      path / 'original' / 'force_model'):
        if (candidate / 'args.npy').exists():
            return candidate
    raise SystemExit(f'no model folder of the original SchNet code '
                     f'(args.npy + validation/) at {path}')


def hessian_modes(model, atoms) -> dict:
    r"""Harmonic analysis with the model's exact Hessian (autograd,
    float64): mass-weighted, translations and rotations projected out;
    frequencies in cm⁻¹ (imaginary ones negative)."""
    import torch
    from torch_geometric.data import Data

    z = torch.as_tensor(atoms.numbers)
    pos = torch.as_tensor(atoms.positions, dtype=torch.float64)
    model = model.double()

    def energy(flat):
        return model(Data(z=z, pos=flat.view(-1, 3))).sum()
    H = torch.autograd.functional.hessian(energy, pos.reshape(-1)).numpy()
    masses = np.repeat(atoms.get_masses(), 3)
    Hm = H / np.sqrt(np.outer(masses, masses))
    # Translations and rotations, mass-weighted, orthonormal.
    x = atoms.positions - atoms.get_center_of_mass()
    sqrt_m = np.sqrt(atoms.get_masses())[:, None]
    rigid = [np.tile(np.eye(3)[k], (len(atoms), 1)) * sqrt_m
             for k in range(3)]
    rigid += [np.cross(np.eye(3)[k], x) * sqrt_m for k in range(3)]
    basis, _ = np.linalg.qr(np.stack([r.ravel() for r in rigid], axis=1))
    P = np.eye(len(masses)) - basis @ basis.T
    values, vectors = np.linalg.eigh(P @ Hm @ P)
    keep = np.argsort(np.abs(values))[6:]  # drop the 6 rigid motions
    values, vectors = values[keep], vectors[:, keep]
    order = np.argsort(values)
    values, vectors = values[order], vectors[:, order]
    hbar = units._hbar * units.J * units.s
    wavenumbers = np.sign(values) * hbar * np.sqrt(np.abs(values)) / \
        units.invcm
    return {'wavenumbers_cm': wavenumbers, 'modes': vectors,
            'masses': masses}


def original_minimum(out: Path, model, start: Atoms) -> tuple:
    r"""The model's minimum near :obj:`start`: BFGS (float64, fmax
    1e-4 eV/Å) from a slightly rattled start, then, while the Hessian has
    imaginary modes, a step of 0.05 Å along the softest one and BFGS
    again (a symmetric start stays on its symmetric saddle otherwise)."""
    import ase.io
    from ase.optimize import BFGS

    from pyg_schnet.md import SchNetCalculator
    path = out / 'c20_original_minimum.extxyz'
    if path.exists():
        atoms = ase.io.read(path)
        return atoms, hessian_modes(model, atoms)
    import torch
    atoms = start.copy()
    atoms.rattle(0.01, seed=0)
    for attempt in range(6):
        atoms.calc = SchNetCalculator(model, dtype=torch.float64)
        BFGS(atoms, logfile=None).run(fmax=1e-4, steps=3000)
        modes = hessian_modes(model, atoms)
        lowest = modes['wavenumbers_cm'][0]
        print(f'   relaxation {attempt + 1}: E = '
              f'{atoms.get_potential_energy():.4f} eV, max |F| '
              f'{np.abs(atoms.get_forces()).max():.1e} eV/Å, lowest mode '
              f'{lowest:.1f} cm⁻¹')
        if lowest > -1.0:  # numerically zero or positive: a minimum
            break
        step = modes['modes'][:, 0] / np.sqrt(modes['masses'])
        atoms.positions += 0.05 * (step / np.abs(step).max()).reshape(-1, 3)
    frame = atoms.copy()
    frame.calc = None
    _write(path, [frame])
    return atoms, modes


def distance_shells(reference: np.ndarray, gap: float = 0.15) -> list:
    r"""Groups the 190 pairs by their distance at the minimum: a new shell
    starts where sorted distances jump by more than :obj:`gap` Å."""
    order = np.argsort(reference)
    shells, current = [], [order[0]]
    for a, b in zip(order[:-1], order[1:], strict=True):
        if reference[b] - reference[a] > gap:
            shells.append(np.array(current))
            current = []
        current.append(b)
    shells.append(np.array(current))
    return shells


def shell_widths(result: dict, shells: list) -> list:
    r"""Mean and standard deviation (Å) of the sampled distances of each
    shell's pairs (every bead, every sample)."""
    d = result['pair_distances']
    return [{'pairs': int(len(s)), 'mean_A': float(d[:, s].mean()),
             'std_A': float(d[:, s].std())} for s in shells]


def original_study(out: Path, path: Path, steps: int,
                   equilibration: int) -> dict:
    r"""The thesis' C20 study with the thesis' network: the original
    SchNet code's ``force_model`` (energy and forces of one model), its
    minimum, RPMD at P = 1 and 8, the distance distributions."""
    import ase.io
    from point_group import point_group

    from pyg_schnet.models import load_original_schnet
    folder = original_models(path)
    model, info = load_original_schnet(folder)
    print(f"   {folder}: SchNet F = {info['args']['basis']}, T = "
          f"{info['args']['interactions']}, cutoff {info['args']['cutoff']} "
          f'Å (all 190 pairs of C20), units converted from kcal/mol to eV')
    shared_start = folder.parent.parent / 'C20.xyz'
    start = ase.io.read(shared_start) if shared_start.exists() else c20()
    atoms, modes = original_minimum(out, model, start)
    group = point_group(atoms.positions, atoms.numbers, tol=5e-3)
    bonds = np.linalg.norm(atoms.positions[:, None] - atoms.positions[None],
                           axis=-1)[np.triu_indices(20, 1)]
    imaginary = int((modes['wavenumbers_cm'] < -1.0).sum())
    near = bonds[bonds < 1.8]
    print(f'   minimum: point group {group}, bonds {near.min():.3f}'
          f'-{near.max():.3f} Å, {imaginary} imaginary modes, '
          f"lowest {modes['wavenumbers_cm'][0]:.1f} cm⁻¹, highest "
          f"{modes['wavenumbers_cm'][-1]:.1f} cm⁻¹")
    classical = rpmd(out, 1, steps, equilibration, model, atoms,
                     tag='_original')
    quantum = rpmd(out, 8, steps, equilibration, model, atoms,
                   tag='_original')
    shells = distance_shells(bonds)
    widths = {f'P{p}': {'shells': shell_widths(r, shells),
                        'ms_per_step': float(r['ms_per_step']),
                        'simulated_ps': float(r['simulated_ps']),
                        'threads': int(r['threads'])}
              for p, r in ((1, classical), (8, quantum))}
    for key, w in widths.items():
        first = w['shells'][0]
        print(f"   {key}: bond peak {first['mean_A']:.4f} ± "
              f"{first['std_A']:.4f} Å (std of {first['pairs']} pairs); "
              'all peaks: ' + ', '.join(
                  f"{s['mean_A']:.2f} ({s['std_A']:.4f})"
                  for s in w['shells'])
              + f"; {w['simulated_ps']:.1f} ps at {w['ms_per_step']:.2f} ms "
              f'per step')
    figure = plot(out, classical, quantum, name='distances_original.png',
                  title="C20 at 300 K, the original SchNet code's "
                  'force_model (the thesis\' network): every bead')
    print(f'   {figure}')
    summary = {'model': str(folder), 'point_group': group,
               'imaginary_modes': imaginary,
               'lowest_mode_cm': float(modes['wavenumbers_cm'][0]),
               'bond_range_A': [float(bonds[bonds < 1.8].min()),
                                float(bonds[bonds < 1.8].max())],
               'widths': widths}
    _write_text(out / 'summary_original.json',
                json.dumps(summary, indent=2) + '\n')
    print(f"   {out / 'summary_original.json'}")
    return summary


def plot(out: Path, classical: dict, quantum: dict,
         name: str = 'distances.png',
         title: str = 'C20 at 300 K, SchNet trained on GFN2-xTB: distances '
         'of every bead') -> Path:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    from pyg_schnet.io import atomic_path
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    for data, label in ((classical, 'P = 1 (classical)'),
                        (quantum, 'P = 8 (RPMD)')):
        ax1.hist(data['distances'], bins=300, density=True,
                 histtype='step', label=label)
        ax2.hist(data['bonds'], bins=120, density=True, histtype='step',
                 label=f"{label}: width {np.std(data['bonds']):.4f} Å")
    ax1.set_xlabel('C-C distance (Å), all 190 pairs')
    ax2.set_xlabel('C-C bond length (Å), pairs < 1.8 Å (magnified)')
    for ax in (ax1, ax2):
        ax.set_ylabel('probability density (1/Å)')
        ax.legend(fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path = out / name
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120, format='png')
    return path


def _write(path: Path, frames) -> None:
    import ase.io

    from pyg_schnet.io import atomic_path
    with atomic_path(path) as tmp:
        ase.io.write(tmp, frames, format='extxyz')


def _write_text(path: Path, text: str) -> None:
    from pyg_schnet.io import atomic_write_text
    atomic_write_text(path, text)


def _save(path: Path, arrays: dict) -> None:
    from pyg_schnet.io import atomic_path
    with atomic_path(path) as tmp:
        with open(tmp, 'wb') as f:
            np.savez(f, **arrays)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--out', default='runs/examples/c20',
                        help='output folder (default: runs/examples/c20)')
    parser.add_argument('--md-steps', type=int, default=20000,
                        help='xTB MD steps (1 fs) per temperature')
    parser.add_argument('--stride', type=int, default=4,
                        help='keep every n-th xTB MD frame')
    parser.add_argument('--epochs', type=int, default=300)
    parser.add_argument('--features', type=int, default=64,
                        help='SchNet features F (64: an RPMD step of C20 '
                        'with 8 beads in under 10 ms on 2 CPU cores)')
    parser.add_argument('--interactions', type=int, default=3)
    parser.add_argument('--max-time', type=float, default=30.0,
                        help='minutes of training at most')
    parser.add_argument('--rpmd-steps', type=int, default=20000,
                        help='RPMD steps of 0.5 fs after equilibration')
    parser.add_argument('--equilibration', type=int, default=2000)
    parser.add_argument('--no-dft', action='store_true',
                        help='skip the PySCF DFT timing')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--model', nargs='+', default=['xtb'],
                        metavar=('KIND', 'PATH'),
                        help="'xtb' (default: the whole study with a SchNet "
                        "trained here on GFN2-xTB) or 'original PATH': the "
                        "thesis' network, the original SchNet code's "
                        'force_model read from PATH (its folder, or the '
                        'folder holding original/force_model), relaxed, '
                        'checked with its Hessian and run with RPMD')
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.model[0] == 'original':
        if len(args.model) != 2:
            parser.error('--model original needs the PATH of the models')
        print("The thesis' network (the original SchNet code's C20 "
              'force_model): minimum and RPMD at 300 K, P = 1 and P = 8')
        original_study(out, Path(args.model[1]), args.rpmd_steps,
                       args.equilibration)
        return
    if args.model != ['xtb']:
        parser.error(f"--model must be 'xtb' or 'original PATH' (got "
                     f"{' '.join(args.model)})")
    print('1. reference data (GFN2-xTB MD)')
    dataset = reference(out, args.md_steps, args.stride, args.seed)
    import ase.io
    configs = len(ase.io.read(dataset, ':'))
    print(f'   {configs} configurations in {dataset}')
    print('2. training SchNet on energies and forces')
    results = train(out, dataset, args.epochs, args.max_time,
                    args.features, args.interactions)
    print(f"   test energy MAE {results['test_mae']:.4f} eV, force MAE "
          f"{results['test_forces_mae']:.4f} eV/Å")
    print('3. RPMD at 300 K, P = 1 and P = 8')
    classical = rpmd(out, 1, args.rpmd_steps, args.equilibration)
    quantum = rpmd(out, 8, args.rpmd_steps, args.equilibration)
    widths = {f'P{p}': {'bond_std_A': float(np.std(d['bonds'])),
                        'bond_mean_A': float(np.mean(d['bonds'])),
                        'all_std_A': float(np.std(d['distances'])),
                        'ms_per_step': float(d['ms_per_step']),
                        'simulated_ps': float(d['simulated_ps'])}
              for p, d in ((1, classical), (8, quantum))}
    for key, w in widths.items():
        print(f"   {key}: bond length {w['bond_mean_A']:.4f} ± "
              f"{w['bond_std_A']:.4f} Å (std), all distances std "
              f"{w['all_std_A']:.4f} Å, {w['simulated_ps']:.1f} ps at "
              f"{w['ms_per_step']:.2f} ms per step")
    figure = plot(out, classical, quantum)
    print(f'   {figure}')
    print('4. speed of one force call')
    timings = speed(out, not args.no_dft)
    schnet = timings['schnet_s']
    print(f"   SchNet {1000 * schnet:.2f} ms, GFN2-xTB "
          f"{1000 * timings['xtb_s']:.1f} ms "
          f"({timings['xtb_s'] / schnet:.1f}x)"
          + (f", PBE/6-31G {timings['dft_pbe_631g_s']:.1f} s "
             f"({timings['dft_pbe_631g_s'] / schnet:.0f}x)"
             if 'dft_pbe_631g_s' in timings else ''))
    print(f"   RPMD step, P = 8: {timings['rpmd_p8_step_ms']:.2f} ms "
          f'(thesis: ~10 ms)')
    summary = dict(configurations=configs, training=results, widths=widths,
                   speed=timings)
    _write_text(out / 'summary.json', json.dumps(summary, indent=2) + '\n')
    print(f'   {out / "summary.json"}')


if __name__ == '__main__':
    main()
