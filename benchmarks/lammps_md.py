"""The cost of running in LAMMPS: MD steps of periodic fcc Cu through
LAMMPS' ML-IAP unified interface on 1 and 2 MPI ranks against the ASE
calculator (velocity Verlet, one process), same model, same structure.

    .venv/bin/python benchmarks/lammps_md.py [--sizes 4000 32000] \
        [--rounds 3] [--steps 5]

The model: SchNet F = 32, T = 2, 4 Å (receptive field 8 Å; the ghost shell
LAMMPS must keep is 10 Å), random weights, float64; 1 torch thread per
process. Each (engine, size) is timed --rounds times, round-robin (LAMMPS
np 1, ASE, LAMMPS np 2, ...), each time --steps steps after one warm-up
step; prints the median [min, max] ms per step, ns/day at 1 fs, the ratio
to the ASE path, and per rank the atoms and pairs computed against the
owned ones (the redundant work on the ghost shell). Needs LAMMPS with
ML-IAP (scripts/setup-lammps.sh) and mpirun for 2 ranks.
"""
import argparse
import json
import os
import pickle
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve()


def structure(size: int):
    from ase.build import bulk
    n = round((size / 4) ** (1 / 3))
    atoms = bulk('Cu', 'fcc', a=3.615, cubic=True).repeat((n, n, n))
    atoms.rattle(0.02, seed=0)
    return atoms


def model():
    import torch

    from pyg_schnet.models import SchNet
    torch.manual_seed(0)
    return SchNet(32, 32, 2, 20, cutoff=4.0).double().eval()


def lammps_worker(model_file: str, structure_file: str, steps: int,
                  out: str) -> None:
    r"""Run inside mpirun: one warm-up step, then --steps steps timed."""
    import ase.io

    from pyg_schnet.md import lammps as lmod

    with open(model_file, 'rb') as f:
        wrapped = pickle.load(f)
    counts = []
    original = lmod.LAMMPSModel.compute_forces

    def counting(self, data):
        original(self, data)
        counts.append(self.last_counts)
    lmod.LAMMPSModel.compute_forces = counting
    atoms = ase.io.read(structure_file)
    lmp = lmod.lammps_session(atoms, model_file, wrapped.model, ['Cu'])
    lmp.commands_string('velocity all create 300.0 1 mom yes rot yes\n'
                        'timestep 0.001\nfix nve all nve\nthermo 0\n'
                        'run 1')
    start = time.perf_counter()
    lmp.command(f'run {steps}')
    seconds = time.perf_counter() - start
    rank = lmp.extract_setting('world_rank')
    Path(f'{out}.{rank}.json').write_text(json.dumps(
        {'rank': rank, 'ms': 1000 * seconds / steps, 'counts': counts[-1]}))
    lmod.close_lammps(lmp)


def time_lammps(model_file, structure_file, steps, ranks) -> dict:
    out = f'{structure_file}.np{ranks}'
    command = [sys.executable, str(HERE), '--worker', model_file,
               structure_file, str(steps), out]
    if ranks > 1:
        command = [shutil.which('mpirun'), '--allow-run-as-root',
                   '--oversubscribe', '-np', str(ranks)] + command
    env = dict(os.environ, OMP_NUM_THREADS='1')
    proc = subprocess.run(command, capture_output=True, text=True, env=env,
                          timeout=3600)
    if proc.returncode != 0:
        raise SystemExit(proc.stderr[-3000:])
    rows = [json.loads(Path(f'{out}.{rank}.json').read_text())
            for rank in range(ranks)]
    return {'ms': max(r['ms'] for r in rows),
            'counts': [r['counts'] for r in sorted(rows,
                                                   key=lambda r: r['rank'])]}


def time_ase(atoms, net, steps) -> float:
    import torch
    from ase import units
    from ase.md.verlet import VelocityVerlet

    from pyg_schnet.md import SchNetCalculator

    torch.set_num_threads(1)
    atoms = atoms.copy()
    atoms.calc = SchNetCalculator(net, dtype=torch.float64)
    dyn = VelocityVerlet(atoms, 1.0 * units.fs)
    dyn.run(1)
    start = time.perf_counter()
    dyn.run(steps)
    return 1000 * (time.perf_counter() - start) / steps


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == '--worker':
        lammps_worker(sys.argv[2], sys.argv[3], int(sys.argv[4]),
                      sys.argv[5])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--sizes', type=int, nargs='+', default=[4000, 32000])
    parser.add_argument('--rounds', type=int, default=3)
    parser.add_argument('--steps', type=int, default=5)
    args = parser.parse_args()
    import ase.io

    from pyg_schnet.md.lammps import write_lammps_model

    net = model()
    folder = Path(tempfile.mkdtemp())
    model_file = str(folder / 'cu.pkl')
    write_lammps_model(net, ['Cu'], model_file)
    engines = ['lammps np 1', 'ase', 'lammps np 2'] if shutil.which(
        'mpirun') else ['lammps np 1', 'ase']
    print(f'load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} '
          f'cores; SchNet F = 32, T = 2, 4 Å, float64, 1 thread per process')
    for size in args.sizes:
        atoms = structure(size)
        structure_file = str(folder / f'cu{size}.extxyz')
        ase.io.write(structure_file, atoms)
        times = {e: [] for e in engines}
        counts = {}
        for _ in range(args.rounds):
            for engine in engines:
                if engine == 'ase':
                    times[engine].append(time_ase(atoms, net, args.steps))
                else:
                    result = time_lammps(model_file, structure_file,
                                         args.steps, int(engine[-1]))
                    times[engine].append(result['ms'])
                    counts[engine] = result['counts']
        ase_ms = statistics.median(times['ase'])
        print(f'\nfcc Cu, {len(atoms)} atoms')
        for engine in engines:
            t = times[engine]
            median = statistics.median(t)
            print(f'  {engine:12s} {median:9.1f} ms per step [{min(t):.1f}, '
                  f'{max(t):.1f}]  {86400e-6 / (median / 1000):.4f} ns/day  '
                  f'{median / ase_ms:.2f}x the ASE path')
            for rank, (owned, total, pairs) in enumerate(
                    counts.get(engine, [])):
                print(f'      rank {rank}: {owned} owned atoms, {total} '
                      f'computed ({total / owned:.1f}x), {pairs} pairs')
    shutil.rmtree(folder, ignore_errors=True)


if __name__ == '__main__':
    np.seterr(all='ignore')
    main()
