"""SchNetPack 2.1.1's own ring-polymer MD engine on C20 (P beads, RingPolymer
integrator, PILE-L thermostat, its MD neighbour list), with a SchNet of
the size asked for: the peer of benchmarks/rpmd_step.py, run by it in
SchNetPack's own virtual environment (never the project's), interleaved
block by block with pyg_schnet's engine.

    SPK_PYTHON benchmarks/schnetpack_rpmd.py --size thesis --beads 8

Protocol on stdin/stdout: prints ``ready`` once built and warmed up; for
each line ``block N`` on stdin it runs N steps and prints the ms per step.

Set-up of that environment (SchNetPack 2.1.1 pins sympy<=1.12, which
would downgrade torch to a 2.4.1 CUDA build; its other requirements work
with torch 2.13.0+cpu):

    python3 -m venv /root/spkvenv
    /root/spkvenv/bin/python -m pip install torch==2.13.0
    /root/spkvenv/bin/python -m pip install --no-deps schnetpack==2.1.1
    /root/spkvenv/bin/python -m pip install ase h5py pyyaml hydra-core \\
        pytorch-lightning torchmetrics hydra-colorlog rich fasteners \\
        dirsync torch-ema matscipy tqdm

SchNetPack imports ``torch.utils.data.dataloader.T_co``, which torch 2.13
no longer has; this script defines it before importing SchNetPack (an
alias of a ``TypeVar``, nothing else changes), and hands the calculator
its model object instead of a pickled file (torch 2.13 loads with
``weights_only=True``).
"""
import argparse
import sys
import time
import typing

import torch.utils.data.dataloader as _dataloader

_dataloader.T_co = typing.TypeVar('T_co', covariant=True)

SIZES = {'small': dict(features=64, interactions=3, rbf=50, cutoff=5.0),
         'thesis': dict(features=128, interactions=6, rbf=200, cutoff=20.0)}


def c20():
    import numpy as np
    from ase import Atoms
    phi = (1 + 5**0.5) / 2
    v = [(a, b, c) for a in (-1, 1) for b in (-1, 1) for c in (-1, 1)]
    for a in (-1, 1):
        for b in (-1, 1):
            v += [(0, a / phi, b * phi), (a / phi, b * phi, 0),
                  (a * phi, 0, b / phi)]
    return Atoms('C20', positions=np.array(v) * 1.45 / (2 / phi))


def main():
    import torch
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--size', choices=sorted(SIZES), default='thesis')
    parser.add_argument('--beads', type=int, default=8)
    parser.add_argument('--threads', type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    import schnetpack as spk
    from schnetpack.md import Simulator, System, UniformInit
    from schnetpack.md.calculators import SchNetPackCalculator
    from schnetpack.md.integrators import RingPolymer
    from schnetpack.md.neighborlist_md import NeighborListMD
    from schnetpack.md.simulation_hooks import PILELocalThermostat
    from schnetpack.transform import ASENeighborList

    size = SIZES[args.size]
    torch.manual_seed(0)
    radial = spk.nn.GaussianRBF(n_rbf=size['rbf'], cutoff=size['cutoff'])
    schnet = spk.representation.SchNet(
        n_atom_basis=size['features'], n_interactions=size['interactions'],
        radial_basis=radial, cutoff_fn=spk.nn.CosineCutoff(size['cutoff']))
    model = spk.model.NeuralNetworkPotential(
        representation=schnet,
        input_modules=[spk.atomistic.PairwiseDistances()],
        output_modules=[spk.atomistic.Atomwise(n_in=size['features'],
                                               output_key='energy'),
                        spk.atomistic.Forces(energy_key='energy',
                                             force_key='forces')])

    class Calculator(SchNetPackCalculator):
        def _load_model(self, model_file):
            return model.to(torch.float64).eval()

    system = System()
    system.load_molecules(molecules=[c20()], n_replicas=args.beads,
                          position_unit_input='Angstrom')
    UniformInit(300.0, remove_center_of_mass=True, remove_translation=True,
                remove_rotation=True).initialize_system(system)
    calculator = Calculator(
        model_file='(in memory)', force_key='forces', energy_unit='eV',
        position_unit='Angstrom', energy_key='energy',
        neighbor_list=NeighborListMD(cutoff=size['cutoff'],
                                     cutoff_shell=0.5,
                                     base_nbl=ASENeighborList))
    simulator = Simulator(system, RingPolymer(0.5, args.beads, 300.0),
                          calculator, simulator_hooks=[
                              PILELocalThermostat(300.0, 100.0)])
    # SchNetPack's calculator computes in float64; its MD tutorial moves
    # the simulator to the same precision.
    simulator = simulator.to(torch.float64)
    simulator.simulate(20)
    print('ready', flush=True)
    for line in sys.stdin:
        words = line.split()
        if not words or words[0] != 'block':
            break
        steps = int(words[1])
        start = time.perf_counter()
        simulator.simulate(steps)
        print(f'{1000 * (time.perf_counter() - start) / steps:.4f}',
              flush=True)


if __name__ == '__main__':
    main()
