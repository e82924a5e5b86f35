"""An IR spectrum from molecular dynamics with a learned potential and a
learned dipole: GFN2-xTB reference data of one small molecule, one SchNet
trained on energies, forces and dipole vectors (latent charges), NVE MD
with it, and the spectrum from the dipole autocorrelation, against the
harmonic frequencies of xTB and of the model.

    .venv/bin/python examples/ir_spectrum/run.py \
        [--out runs/examples/ir_spectrum]

Every stage writes into --out (git-ignored under runs/) and is skipped
when its output exists, so an interrupted run continues where it stopped.
About 15 minutes on 2 CPU cores with the defaults (water). Units: Å, eV,
eV/Å, e·Å, fs, K, cm⁻¹.

Stages:
1. ``reference``: the molecule relaxed with GFN2-xTB (``tblite``), its
   harmonic frequencies (finite differences, ASE ``Vibrations``), and
   Langevin MD with xTB at --sample-temperature; every --stride-th frame
   is kept with its xTB energy, forces and dipole (``xtb_md.extxyz``).
2. ``train``: ``pyg-schnet train --properties dipole`` (energy, forces and
   dipole vectors in one loss), 80/10/10 % split.
3. ``nve``: --trajectories NVE runs of --nve-ps ps (0.5 fs, velocity
   Verlet; ``RingPolymerMD`` with one bead, all runs in one batch) after
   --equilibration-ps (1 ps) of Langevin at --temperature, with the
   centre-of-mass motion and
   the rotation removed; the model's dipole of every step
   (``pyg_schnet.md.spectra.trajectory_dipoles``).
4. ``spectrum``: the IR spectrum (``pyg_schnet.md.spectra.ir_spectrum``,
   harmonic quantum correction), its peaks next to xTB's and the model's
   harmonic frequencies; ``spectrum.png`` and ``summary.json``.
"""
import argparse
import json
import time
from pathlib import Path

import numpy as np
from ase import units
from ase.build import molecule


def xtb():
    from tblite.ase import TBLite
    return TBLite(method='GFN2-xTB', verbosity=0)


def harmonic(atoms, calc, name: str, folder: Path) -> list:
    r"""Harmonic wavenumbers (cm⁻¹, the 3N − 6 real ones, ascending) from
    central finite differences of the forces (0.005 Å)."""
    from ase.vibrations import Vibrations

    atoms = atoms.copy()
    atoms.calc = calc
    vib = Vibrations(atoms, name=str(folder / f'vib_{name}'), delta=0.005)
    vib.clean()
    vib.run()
    energies = vib.get_energies()
    vib.clean()
    real = sorted(float(e.real) / units.invcm for e in energies
                  if abs(e.imag) < 1e-8 and e.real / units.invcm > 200)
    return real[-(3 * len(atoms) - 6):]  # fewer if some are imaginary


def reference(out: Path, name: str, temperature: float, steps: int,
              stride: int, seed: int) -> tuple:
    import ase.io
    from ase.calculators.singlepoint import SinglePointCalculator
    from ase.md.langevin import Langevin
    from ase.md.velocitydistribution import MaxwellBoltzmannDistribution
    from ase.optimize import BFGS

    from pyg_schnet.io import atomic_path, atomic_write_text

    path, info = out / 'xtb_md.extxyz', out / 'xtb.json'
    if path.exists() and info.exists():
        return path, json.loads(info.read_text())
    atoms = molecule(name)
    atoms.calc = xtb()
    BFGS(atoms, logfile=None).run(fmax=1e-4, steps=500)
    minimum = atoms.copy()
    modes = harmonic(minimum, xtb(), 'xtb', out)
    rng = np.random.default_rng(seed)
    MaxwellBoltzmannDistribution(atoms, temperature_K=temperature, rng=rng)
    dyn = Langevin(atoms, 0.5 * units.fs, temperature_K=temperature,
                   friction=0.02, rng=rng, fixcm=False)
    frames = []
    start = time.perf_counter()

    def keep():
        frame = atoms.copy()
        frame.calc = SinglePointCalculator(
            frame, energy=atoms.get_potential_energy(),
            forces=atoms.get_forces(), dipole=atoms.get_dipole_moment())
        frames.append(frame)
    dyn.run(200)
    dyn.attach(keep, interval=stride)
    dyn.run(steps)
    seconds = time.perf_counter() - start
    with atomic_path(path) as tmp:
        ase.io.write(tmp, frames, format='extxyz')
    with atomic_path(out / 'minimum.extxyz') as tmp:
        ase.io.write(tmp, minimum, format='extxyz')
    record = {'molecule': name, 'harmonic_xtb_cm1': modes,
              'frames': len(frames), 'sample_temperature_K': temperature,
              'xtb_md_seconds': round(seconds, 1)}
    atomic_write_text(info, json.dumps(record, indent=2) + '\n')
    return path, record


def train(out: Path, dataset: Path, epochs: int, max_time: float) -> dict:
    from pyg_schnet.cli import main

    run = out / 'schnet'
    if not (run / 'results.json').exists():
        args = ['train', '--dataset', str(dataset), '--root',
                str(out / 'cache'), '--run-dir', str(run), '--epochs',
                str(epochs), '--max-time', str(max_time), '--batch-size',
                '16', '--lr', '1e-3', '--rho', '0.01', '--features', '64',
                '--interactions', '3', '--properties', 'dipole',
                '--no-progress']
        if (run / 'config.yaml').exists():
            args = ['train', '--resume', '--run-dir', str(run),
                    '--no-progress']
        print('   pyg-schnet ' + ' '.join(args[1:]))
        if main(args) != 0:
            raise SystemExit('training failed')
    return json.loads((run / 'results.json').read_text())


def without_rotation(q, p, masses):
    r"""Momenta :obj:`p` :obj:`[S, 1, N, 3]` without the centre-of-mass
    motion and the rotation of each system: a freely rotating molecule's
    dipole spectrum splits each band into rotational branches (for
    water's bend the R branch, ~100 cm⁻¹ above the band centre, is the
    highest point at 300 K), which hides the vibrational frequencies this
    example compares with the harmonic ones."""
    import torch

    m = torch.as_tensor(masses, dtype=p.dtype).view(-1, 1)  # [N, 1]
    out = p.clone()
    eye = torch.eye(3, dtype=p.dtype)
    for s in range(p.shape[0]):
        r, ps = q[s, 0], p[s, 0]
        ps = ps - m * ps.sum(0) / m.sum()  # centre-of-mass motion
        r = r - (m * r).sum(0) / m.sum()
        angular = torch.cross(r, ps, dim=-1).sum(0)
        inertia = (m.view(-1, 1, 1) * (r.pow(2).sum(-1).view(-1, 1, 1) * eye
                                       - r.unsqueeze(-1) * r.unsqueeze(-2))
                   ).sum(0)
        omega = torch.linalg.solve(inertia, angular)
        out[s, 0] = ps - m * torch.cross(omega.expand_as(r), r, dim=-1)
    return out


def nve(out: Path, model, minimum, temperature: float, picoseconds: float,
        trajectories: int, seed: int, equilibration_ps: float = 1.0) -> dict:
    r"""--trajectories systems in one batch (``RingPolymerMD`` with one
    bead): Langevin at :obj:`temperature` for 1 ps, then NVE; positions
    every step, dipoles from the model's head afterwards."""
    from pyg_schnet.io import atomic_path
    from pyg_schnet.md import RingPolymerMD
    from pyg_schnet.md.spectra import trajectory_dipoles

    path = out / 'nve_dipoles.npz'
    if path.exists():
        return dict(np.load(path))
    timestep = 0.5
    steps = int(round(1000 * picoseconds / timestep))
    start = time.perf_counter()
    md = RingPolymerMD(model, minimum, beads=1, temperature=temperature,
                       timestep=timestep, thermostat='langevin', tau0=100.0,
                       systems=trajectories, seed=seed)
    for _ in range(int(round(1000 * equilibration_ps / timestep))):
        md.step()
    md.thermostat = 'none'  # NVE from here on
    md.p = without_rotation(md.q, md.p, minimum.get_masses())
    frames = np.empty((steps, trajectories, len(minimum), 3))
    conserved, temperatures = [], []
    for k in range(steps):
        md.step()
        frames[k] = md.q[:, 0].double().cpu().numpy()
        if k % 20 == 0:
            obs = md.observables()
            conserved.append(obs['conserved'].double().cpu().numpy())
            temperatures.append(obs['temperature'].double().cpu().numpy())
    md_seconds = time.perf_counter() - start
    dipoles = trajectory_dipoles(md.model, minimum.numbers, frames)
    conserved_a = np.array(conserved)
    result = {'dipoles': dipoles.transpose(1, 0, 2),  # [R, T, 3]
              'timestep_fs': timestep,
              'energy_spread_eV': np.ptp(conserved_a, axis=0),
              'temperature_K': np.array(temperatures).mean(axis=0),
              'seconds': time.perf_counter() - start,
              'md_ms_per_step': 1000 * md_seconds / (
                  steps + int(round(1000 * equilibration_ps / timestep)))}
    print(f'   {trajectories} NVE runs of {picoseconds:g} ps in one batch: '
          f"{result['md_ms_per_step']:.2f} ms per step, conserved energy "
          f"within {1000 * result['energy_spread_eV'].max():.2f} meV, <T> "
          + ', '.join(f'{t:.0f}' for t in result['temperature_K']) + ' K')
    with atomic_path(path) as tmp:
        with open(tmp, 'wb') as f:
            np.savez(f, **result)
    return result


def plot(out: Path, wavenumbers, intensity, xtb_modes, model_modes,
         peaks) -> Path:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    from pyg_schnet.io import atomic_path

    keep = (wavenumbers > 400) & (wavenumbers < 4400)
    fig, ax = plt.subplots(figsize=(8, 4))
    ax.plot(wavenumbers[keep], intensity[keep], color='k', lw=1.2,
            label='SchNet NVE MD, dipole autocorrelation (quantum-corrected)')
    for k, nu in enumerate(xtb_modes):
        ax.axvline(nu, color='tab:blue', ls='--', lw=1,
                   label='GFN2-xTB harmonic' if k == 0 else None)
    for k, nu in enumerate(model_modes):
        ax.axvline(nu, color='tab:orange', ls=':', lw=1.5,
                   label='SchNet harmonic' if k == 0 else None)
    for p in peaks:
        ax.annotate(f"{p['peak']:.0f}", (p['peak'], p['intensity']),
                    textcoords='offset points', xytext=(0, 4),
                    ha='center', fontsize=8)
    ax.set_xlabel('wavenumber (cm$^{-1}$)')
    ax.set_ylabel('IR intensity (normalised)')
    ax.set_ylim(0, 1.15)
    ax.legend(fontsize=8, loc='upper left')
    fig.tight_layout()
    path = out / 'spectrum.png'
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=130, format='png')
    plt.close(fig)
    return path


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--out', default='runs/examples/ir_spectrum')
    parser.add_argument('--molecule', default='H2O',
                        help="an ASE g2 molecule name (default: H2O)")
    parser.add_argument('--sample-temperature', type=float, default=500.0,
                        help='K of the xTB sampling MD (default: 500)')
    parser.add_argument('--md-steps', type=int, default=16000,
                        help='xTB MD steps of 0.5 fs (default: 16000)')
    parser.add_argument('--stride', type=int, default=8,
                        help='keep every n-th xTB frame (default: 8)')
    parser.add_argument('--epochs', type=int, default=300)
    parser.add_argument('--max-time', type=float, default=8.0,
                        help='minutes of training at most (default: 8)')
    parser.add_argument('--temperature', type=float, default=300.0,
                        help='K of the NVE runs (default: 300)')
    parser.add_argument('--nve-ps', type=float, default=10.0,
                        help='ps of each NVE run (default: 10)')
    parser.add_argument('--trajectories', type=int, default=4)
    parser.add_argument('--equilibration-ps', type=float, default=1.0,
                        help='ps of Langevin before the NVE runs '
                        '(default: 1)')
    parser.add_argument('--max-lag-fs', type=float, default=1000.0,
                        help='longest lag of the autocorrelation (fs)')
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    import ase.io
    import torch

    from pyg_schnet.io import atomic_write_text
    from pyg_schnet.md import SchNetCalculator
    from pyg_schnet.md.spectra import ir_spectrum, spectrum_peaks

    print(f'1. reference: {args.molecule} with GFN2-xTB')
    dataset, ref = reference(out, args.molecule, args.sample_temperature,
                             args.md_steps, args.stride, args.seed)
    print(f"   {ref['frames']} frames at {ref['sample_temperature_K']:.0f} "
          f"K; harmonic (xTB): "
          + ', '.join(f'{nu:.0f}' for nu in ref['harmonic_xtb_cm1'])
          + ' cm⁻¹')
    print('2. training SchNet on energies, forces and dipoles')
    results = train(out, dataset, args.epochs, args.max_time)
    dipole = results['properties']['dipole']
    print(f"   test energy MAE {results['test_mae']:.4f} eV, forces "
          f"{results['test_forces_mae']:.4f} eV/Å, dipole "
          f"{dipole['mae']:.4f} e·Å ({dipole['mae_display']:.4f} D)")
    calc = SchNetCalculator.from_run(out / 'schnet', dtype=torch.float64)
    minimum = ase.io.read(out / 'minimum.extxyz')
    from ase.optimize import BFGS
    relaxed = minimum.copy()
    relaxed.calc = calc
    BFGS(relaxed, logfile=None).run(fmax=1e-4, steps=500)
    model_modes = harmonic(relaxed, calc, 'schnet', out)
    print('   harmonic (SchNet): '
          + ', '.join(f'{nu:.0f}' for nu in model_modes) + ' cm⁻¹')
    print(f'3. NVE MD with the model at {args.temperature:.0f} K')
    md = nve(out, calc.model, relaxed, args.temperature, args.nve_ps,
             args.trajectories, args.seed, args.equilibration_ps)
    print('4. IR spectrum')
    wavenumbers, intensity = ir_spectrum(
        md['dipoles'], float(md['timestep_fs']), args.temperature,
        max_lag_fs=args.max_lag_fs)
    peaks = spectrum_peaks(wavenumbers, intensity, model_modes,
                           width=150.0)
    rows = []
    if len(model_modes) != len(ref['harmonic_xtb_cm1']):
        print(f"   note: the model has {len(model_modes)} real modes above "
              f"200 cm⁻¹, xTB {len(ref['harmonic_xtb_cm1'])}: paired in "
              f'order as far as they go')
    for p, xtb_nu, model_nu in zip(peaks, ref['harmonic_xtb_cm1'],
                                   model_modes, strict=False):
        rows.append({'xtb_harmonic_cm1': round(xtb_nu, 1),
                     'schnet_harmonic_cm1': round(model_nu, 1),
                     'md_peak_cm1': round(p['peak'], 1),
                     'anharmonic_shift_cm1': round(p['peak'] - model_nu, 1),
                     'model_error_cm1': round(model_nu - xtb_nu, 1),
                     'intensity': round(p['intensity'], 3)})
        print(f"   xTB harmonic {xtb_nu:7.1f}  SchNet harmonic "
              f"{model_nu:7.1f}  MD peak {p['peak']:7.1f} cm⁻¹ "
              f"(shift {p['peak'] - model_nu:+.1f})")
    figure = plot(out, wavenumbers, intensity, ref['harmonic_xtb_cm1'],
                  model_modes, peaks)
    summary = {'molecule': args.molecule, 'reference': ref,
               'training': {k: results[k] for k in
                            ('test_mae', 'test_forces_mae', 'epochs',
                             'epochs_run', 'train_minutes')},
               'dipole_test': dipole,
               'nve': {'temperature_K': md['temperature_K'].tolist(),
                       'energy_spread_eV': md['energy_spread_eV'].tolist(),
                       'picoseconds': args.nve_ps,
                       'trajectories': args.trajectories,
                       'seconds': float(md['seconds']),
                       'md_ms_per_step': float(md['md_ms_per_step'])},
               'resolution_cm1': float(wavenumbers[1] - wavenumbers[0]),
               'peaks': rows}
    atomic_write_text(out / 'summary.json',
                      json.dumps(summary, indent=2) + '\n')
    print(f'   {figure}, {out / "summary.json"}')


if __name__ == '__main__':
    main()
