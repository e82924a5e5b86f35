"""NVE MD of a structure in LAMMPS with a pyg_schnet model (ML-IAP
unified), on as many MPI ranks as it is started with:

    .venv/bin/python examples/lammps_md.py MODEL.pkl STRUCTURE --elements Cu
    mpirun -np 2 .venv/bin/python examples/lammps_md.py MODEL.pkl STRUCTURE \
        --elements Cu

MODEL.pkl comes from ``pyg-schnet deploy lammps RUN --elements ... --out
MODEL.pkl``; STRUCTURE is any file ASE reads with an orthogonal cell.
Units: LAMMPS ``units metal`` (Å, eV, ps; the time step in fs here).
Prints the energy and largest force before the run, then LAMMPS' thermo
lines (every --every steps) and the wall time per step.
"""
import argparse
import pickle
import time

import ase.io
import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('model', help='a file from pyg-schnet deploy lammps')
    parser.add_argument('structure', help='a structure file ASE reads')
    parser.add_argument('--elements', nargs='+', required=True)
    parser.add_argument('--steps', type=int, default=100)
    parser.add_argument('--timestep', type=float, default=1.0,
                        help='fs (default: 1.0)')
    parser.add_argument('--temperature', type=float, default=300.0,
                        help='K of the initial velocities (default: 300)')
    parser.add_argument('--every', type=int, default=20)
    args = parser.parse_args()

    from pyg_schnet.md.lammps import (
        close_lammps,
        lammps_energy_forces,
        lammps_session,
    )

    with open(args.model, 'rb') as f:  # your own file: it is a pickle
        wrapped = pickle.load(f)
    atoms = ase.io.read(args.structure)
    lmp = lammps_session(atoms, args.model, wrapped.model, args.elements,
                         screen=True)
    energy, forces = lammps_energy_forces(lmp)
    rank = lmp.extract_setting('world_rank')
    ranks = lmp.extract_setting('world_size')
    if rank == 0:
        print(f'{len(atoms)} atoms on {ranks} MPI ranks: energy '
              f'{energy:.6f} eV, largest force '
              f'{np.linalg.norm(forces, axis=1).max():.4f} eV/Å')
    lmp.commands_string(
        f'velocity all create {args.temperature} 4928459 mom yes rot yes '
        f'dist gaussian\n'
        f'timestep {args.timestep / 1000}\nfix nve all nve\n'
        f'thermo_style custom step temp pe ke etotal press\n'
        f'thermo {args.every}')
    start = time.perf_counter()
    lmp.command(f'run {args.steps}')
    seconds = time.perf_counter() - start
    if rank == 0:
        per_step = seconds / max(args.steps, 1)
        print(f'{1000 * per_step:.1f} ms per step, '
              f'{args.timestep * 1e-6 * 86400 / per_step:.4f} ns/day')
    close_lammps(lmp)


if __name__ == '__main__':
    main()
