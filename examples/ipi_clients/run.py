"""Path-integral MD in i-PI with the beads computed by several pyg_schnet
clients at once: water, P = 8 beads, 300 K, PILE-L, with the pretrained
``schnet-qm9-U0`` (or --model RUN), served by 1 and then 2 clients
(``pyg-schnet ipi-client``, UNIX sockets), the same seed: both give the
same trajectory; the wall time of each is printed.

    .venv/bin/python examples/ipi_clients/run.py [--out runs/examples/ipi]

i-PI (PyPI ``ipi``) runs the dynamics; every client is a process that
loads the model once and computes the beads i-PI sends it. On more
machines the clients connect over TCP (``<ffsocket mode='inet'>`` and
``pyg-schnet ipi-client MODEL STRUCTURE --address HOST:PORT``).
Units: Å, eV, fs, K (i-PI converts to its atomic units).
"""
import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

INPUT = """<simulation verbosity='low'>
  <output prefix='run'>
    <properties stride='{stride}' filename='out'> [ step, time{{femtosecond}},
      potential{{electronvolt}}, temperature{{kelvin}} ] </properties>
    <trajectory filename='xc' stride='{stride}' format='xyz'
      cell_units='angstrom'> x_centroid{{angstrom}} </trajectory>
  </output>
  <total_steps>{steps}</total_steps>
  <prng><seed>{seed}</seed></prng>
  <ffsocket name='schnet' mode='unix' pbc='false'>
    <address>{socket}</address>
  </ffsocket>
  <system>
    <initialize nbeads='{beads}'>
      <file mode='xyz' units='angstrom'>init.xyz</file>
      <cell mode='abc' units='angstrom'> [20.0, 20.0, 20.0] </cell>
      <velocities mode='thermal' units='kelvin'>300</velocities>
    </initialize>
    <forces><force forcefield='schnet'/></forces>
    <ensemble><temperature units='kelvin'>300</temperature></ensemble>
    <motion mode='dynamics'>
      <dynamics mode='nvt'>
        <timestep units='femtosecond'>0.5</timestep>
        <thermostat mode='pile_l'><tau units='femtosecond'>100</tau>
        </thermostat>
      </dynamics>
    </motion>
  </system>
</simulation>
"""


def ipi_executable() -> str:
    found = shutil.which('i-pi') or os.path.join(
        os.path.dirname(sys.executable), 'i-pi')
    if not os.path.exists(found):
        raise SystemExit('i-PI is not installed (pip install ipi)')
    return found


def run_ipi(folder: Path, model: str, structure: str, clients: int,
            beads: int = 8, steps: int = 200, seed: int = 31415,
            stride: int = 10) -> dict:
    r"""One i-PI run in :obj:`folder` with :obj:`clients` force clients;
    returns the wall time, the potential energies (eV) and the centroid
    positions (Å) of the output steps."""
    import ase.io

    folder.mkdir(parents=True, exist_ok=True)
    ase.io.write(folder / 'init.xyz', ase.io.read(structure), format='xyz')
    socket = f'pygschnet-{os.getpid()}-{clients}-{time.monotonic_ns()}'
    (folder / 'input.xml').write_text(INPUT.format(
        steps=steps, seed=seed, socket=socket, beads=beads, stride=stride))
    env = dict(os.environ, OMP_NUM_THREADS='1')
    start = time.perf_counter()
    server = subprocess.Popen([ipi_executable(), 'input.xml'], cwd=folder,
                              stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, env=env)
    command = [sys.executable, '-m', 'pyg_schnet', 'ipi-client', model,
               str(Path(structure).resolve()), '--unix', socket,
               '--threads', '1']
    workers = [subprocess.Popen(command, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True,
                                env=env) for _ in range(clients)]
    try:
        output, _ = server.communicate(timeout=3600)
        reports = [w.communicate(timeout=120)[0] for w in workers]
    finally:
        for process in [server, *workers]:
            if process.poll() is None:
                process.kill()
    seconds = time.perf_counter() - start
    if server.returncode != 0:
        raise SystemExit(f'i-PI failed:\n{output[-3000:]}')
    for report in reports:
        if 'force calls' not in report:
            raise SystemExit(f'a client failed:\n{report[-3000:]}')
    table = np.loadtxt(folder / 'run.out', comments='#')
    frames = ase.io.read(folder / 'run.xc.xyz', ':')
    return {'seconds': seconds, 'potential': table[:, 2],
            'centroids': np.stack([a.positions for a in frames]),
            'calls': [int(r.split('computed ')[1].split()[0])
                      for r in reports]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--out', default='runs/examples/ipi')
    parser.add_argument('--model', default='schnet-qm9-U0',
                        help='run folder, model.pt or pretrained name')
    parser.add_argument('--steps', type=int, default=200)
    parser.add_argument('--beads', type=int, default=8)
    parser.add_argument('--clients', type=int, nargs='+', default=[1, 2])
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    import ase.io
    from ase.build import molecule
    structure = out / 'water.xyz'
    ase.io.write(structure, molecule('H2O'))
    runs = {}
    for clients in args.clients:
        runs[clients] = run_ipi(out / f'clients_{clients}', args.model,
                                str(structure), clients, args.beads,
                                args.steps)
        r = runs[clients]
        print(f'{clients} client(s): {args.steps} steps of {args.beads} '
              f'beads in {r["seconds"]:.1f} s (force calls per client: '
              f'{r["calls"]}); last potential {r["potential"][-1]:.6f} eV')
    first = runs[args.clients[0]]
    for clients, r in runs.items():
        if clients != args.clients[0]:
            print(f'{clients} vs {args.clients[0]} client(s): largest '
                  f'centroid difference '
                  f'{np.abs(r["centroids"] - first["centroids"]).max():.2e} '
                  f'Å, potential '
                  f'{np.abs(r["potential"] - first["potential"]).max():.2e}'
                  f' eV')


if __name__ == '__main__':
    main()
