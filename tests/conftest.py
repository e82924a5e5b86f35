"""Shared fixtures: real molecular geometries from ASE's G2 collection."""
import numpy as np
import pytest
import torch
from ase.build import molecule
from torch_geometric.data import Data

from pyg_schnet.models import DTNN, SchNet

G2_NAMES = ['CH3CH2OH', 'C6H6', 'CH3COOH', 'H2O', 'NH3', 'HCOOH', 'C2H6',
            'CH3CN']


def atoms_to_data(atoms, dtype=torch.float64) -> Data:
    return Data(z=torch.as_tensor(atoms.numbers, dtype=torch.long),
                pos=torch.as_tensor(np.asarray(atoms.positions), dtype=dtype))


def g2_data(name: str, dtype=torch.float64) -> Data:
    return atoms_to_data(molecule(name), dtype)


def small_models():
    r"""Small, float64 versions of both models, with non-trivial readout
    statistics, for exact physics checks."""
    torch.manual_seed(0)
    schnet = SchNet(hidden_channels=32, num_filters=32, num_interactions=3,
                    num_gaussians=25, cutoff=4.0, mean=-0.3, std=2.0)
    dtnn = DTNN(channels=16, num_factors=24, num_interactions=3, cutoff=4.0,
                gaussian_spacing=0.2, mean=0.1, std=1.5, init='glorot')
    return {'schnet': schnet.double().eval(), 'dtnn': dtnn.double().eval()}


@pytest.fixture(params=['schnet', 'dtnn'])
def model(request):
    return small_models()[request.param]


def random_rotation(seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    q, r = torch.linalg.qr(torch.randn(3, 3, generator=gen,
                                       dtype=torch.float64))
    q = q * torch.sign(torch.diagonal(r))
    if torch.det(q) < 0:
        q[:, 0] = -q[:, 0]
    return q


def emt_molecules(count: int = 24, seed: int = 0):
    r"""Rattled G2 molecules labelled with ASE's EMT calculator (a real
    potential; eV and eV/Å), as a list of :class:`Data`."""
    from ase.calculators.emt import EMT

    rng = np.random.default_rng(seed)
    out = []
    for k in range(count):
        atoms = molecule(G2_NAMES[k % len(G2_NAMES)])
        atoms.positions += rng.normal(0.0, 0.05, atoms.positions.shape)
        atoms.calc = EMT()
        data = atoms_to_data(atoms, torch.float32)
        data.energy = torch.tensor([atoms.get_potential_energy()])
        data.forces = torch.as_tensor(atoms.get_forces(),
                                      dtype=torch.float32)
        out.append(data)
    return out


@pytest.fixture(scope='session')
def emt_file(tmp_path_factory):
    r"""40 rattled fcc alloys of two atoms (EMT energies, forces, stress)
    in an extxyz file."""
    from ase.calculators.emt import EMT

    from pyg_schnet.data import label_structures, rattled_alloys
    path = tmp_path_factory.mktemp('emt') / 'alloys.extxyz'
    label_structures(rattled_alloys(40, repeat=1, seed=0), EMT, path,
                     properties=('energy', 'forces', 'stress'))
    return path


def train_args(emt_file, run_dir, *extra):
    r"""`pyg-schnet train` arguments of a tiny, fast run on
    :func:`emt_file`."""
    return ['train', '--dataset', str(emt_file), '--root',
            str(run_dir.parent / 'cache'), '--n-train', '24', '--n-val', '8',
            '--n-test', '8', '--features', '16', '--interactions', '2',
            '--cutoff', '4.0', '--batch-size', '8', '--lr', '3e-3',
            '--max-time', 'none', '--no-progress', '--run-dir',
            str(run_dir), *extra]


def cli_error(capsys, argv, match):
    r"""Runs ``pyg-schnet ARGV``, which must fail with one ``error: ...``
    line containing :obj:`match` (case-insensitive) and no traceback."""
    from pyg_schnet.cli import main
    assert main(argv) == 2, argv
    err = capsys.readouterr().err
    assert err.startswith('error:'), err
    assert 'Traceback' not in err
    assert match.lower() in err.lower(), err
    return err
