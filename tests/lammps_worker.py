"""Runs a pyg_schnet LAMMPS model file on a structure, on as many MPI
ranks as it is started with (``mpirun -np 2 python tests/lammps_worker.py
MODEL STRUCTURE OUT [NVE_STEPS]``); rank 0 writes the energy (eV), the
forces (eV/Å) and, for NVE steps, the total energy every step to OUT
(.npz)."""
import pickle
import sys

import ase.io
import numpy as np


def main() -> None:
    from pyg_schnet.md.lammps import (
        close_lammps,
        lammps_energy_forces,
        lammps_session,
    )

    model_file, structure, out = sys.argv[1:4]
    steps = int(sys.argv[4]) if len(sys.argv) > 4 else 0
    with open(model_file, 'rb') as f:
        wrapped = pickle.load(f)
    atoms = ase.io.read(structure)
    lmp = lammps_session(atoms, model_file, wrapped.model,
                         wrapped.element_types)
    energy, forces = lammps_energy_forces(lmp)
    total = []
    if steps:
        log = f'{out}.etotal.txt'
        lmp.commands_string('velocity all create 300.0 4928459 mom yes '
                            'rot yes dist gaussian\n'
                            'timestep 0.0005\nfix nve all nve\n'
                            'thermo_style custom step pe ke etotal\n'
                            'thermo 1\n'
                            f'fix log all print 1 "$(etotal:%.15g)" file '
                            f'{log} screen no\n'
                            f'run {steps}')
        if lmp.extract_setting('world_rank') == 0:
            total = np.loadtxt(log, comments='#').tolist()
    if lmp.extract_setting('world_rank') == 0:
        np.savez(out, energy=energy, forces=forces, total=np.array(total),
                 ranks=lmp.extract_setting('world_size'))
    close_lammps(lmp)


if __name__ == '__main__':
    main()
