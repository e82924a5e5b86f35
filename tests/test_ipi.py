"""i-PI with several pyg_schnet force clients: the beads of a
path-integral run split over two clients give the trajectory of one."""
import os
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from ase.build import molecule

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / 'examples'
                       / 'ipi_clients'))

HAVE_IPI = shutil.which('i-pi') is not None or os.path.exists(
    os.path.join(os.path.dirname(sys.executable), 'i-pi'))


@pytest.mark.skipif(not HAVE_IPI, reason='i-PI (PyPI ipi) is not installed')
def test_two_clients_give_the_trajectory_of_one(tmp_path):
    import ase.io
    from run import run_ipi

    from pyg_schnet.models import SchNet, save_model

    torch.manual_seed(0)
    save_model(SchNet(16, 16, 2, 12, cutoff=4.0), tmp_path / 'model.pt')
    structure = tmp_path / 'water.xyz'
    ase.io.write(structure, molecule('H2O'))
    runs = [run_ipi(tmp_path / f'c{n}', str(tmp_path / 'model.pt'),
                    str(structure), clients=n, beads=4, steps=12, stride=4)
            for n in (1, 2)]
    one, two = runs
    assert min(two['calls']) > 0  # both clients worked
    assert one['centroids'].shape == two['centroids'].shape
    assert np.abs(one['centroids'] - two['centroids']).max() < 1e-8
    assert np.abs(one['potential'] - two['potential']).max() < 1e-8


def test_client_needs_one_socket():
    from pyg_schnet.md.ipi import ipi_client
    from pyg_schnet.models import SchNet

    with pytest.raises(ValueError, match='socket'):
        ipi_client(SchNet(8, 8, 1, 5), molecule('H2O'))
    with pytest.raises(ConnectionError, match='no i-PI server'):
        ipi_client(SchNet(8, 8, 1, 5), molecule('H2O'),
                   unixsocket='pyg-schnet-nobody-listens', wait=0.5)
