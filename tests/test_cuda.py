"""The same numbers on a GPU as on the CPU (run where CUDA is available)."""
import pytest
import torch
from ase.build import bulk
from torch_geometric.data import Batch

from pyg_schnet.data import from_ase
from pyg_schnet.graph import periodic_radius_graph, radius_graph
from pyg_schnet.models import DTNN, SchNet

from conftest import g2_data

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(),
                                reason='needs a CUDA device')


def _edge_set(edge_index, offsets=None):
    rows = edge_index.t().tolist()
    if offsets is None:
        return {tuple(r) for r in rows}
    return {tuple(r) + tuple(s) for r, s in zip(rows, offsets.tolist(),
                                                strict=True)}


def test_graphs_on_gpu_equal_cpu():
    crystal = bulk('Cu', 'fcc', a=3.61, cubic=True).repeat(3)
    crystal.rattle(0.05, seed=0)
    data = from_ase(crystal, dtype=torch.float64)
    cpu = periodic_radius_graph(data.pos, 5.0, data.cell, data.pbc)
    gpu = periodic_radius_graph(data.pos.cuda(), 5.0, data.cell.cuda(),
                                data.pbc.cuda())
    assert _edge_set(*cpu) == _edge_set(gpu[0].cpu(), gpu[1].cpu())
    mol = g2_data('C6H6')
    assert _edge_set(radius_graph(mol.pos, 5.0)) == \
        _edge_set(radius_graph(mol.pos.cuda(), 5.0).cpu())


@pytest.mark.parametrize('cls', [SchNet, DTNN])
def test_models_on_gpu_equal_cpu(cls):
    torch.manual_seed(0)
    model = cls(cutoff=5.0).double().eval()
    crystal = bulk('Cu', 'fcc', a=3.61) * (2, 2, 2)
    crystal.rattle(0.05, seed=1)
    batch = Batch.from_data_list([from_ase(crystal, dtype=torch.float64)])
    e, f, s = model(batch, forces=True, stress=True)
    e_gpu, f_gpu, s_gpu = model.cuda()(batch.cuda(), forces=True,
                                       stress=True)
    torch.testing.assert_close(e_gpu.cpu(), e)
    torch.testing.assert_close(f_gpu.cpu(), f)
    torch.testing.assert_close(s_gpu.cpu(), s)
