"""Deployment routes give the model's energies and forces."""
import warnings

import pytest
import torch
from ase.build import bulk, molecule
from torch_geometric.data import Batch

from pyg_schnet.data import from_ase
from pyg_schnet.graph import PeriodicRadiusGraph, half_pairs
from pyg_schnet.models.export import export_energy, script
from pyg_schnet.nn import (
    Atomwise,
    CFConv,
    DTNNInteraction,
    SchNetInteraction,
    ShiftedSoftplus,
)

from conftest import small_models


def _inputs(model, structures=None):
    structures = structures or [
        from_ase(molecule('CH3CH2OH'), torch.float64),
        from_ase(bulk('Cu', 'fcc', a=3.6) * (2, 1, 1), torch.float64),
        from_ase(molecule('C6H6'), torch.float64)]
    batch = PeriodicRadiusGraph(model.cutoff)(
        Batch.from_data_list(structures))
    half = half_pairs(batch.edge_index, batch.cell_offsets)
    return batch, (batch.z, batch.pos, batch.edge_index[:, half],
                   batch.batch, batch.cell, batch.cell_offsets[half])


@pytest.mark.parametrize('name', ['schnet', 'dtnn'])
def test_scripted_energy_and_forces_equal_the_model(name, tmp_path):
    model = small_models()[name]
    batch, inputs = _inputs(model)
    energy, forces = model(batch, forces=True)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', DeprecationWarning)
        scripted = script(model)
        scripted.save(str(tmp_path / 'model.pt'))
        loaded = torch.jit.load(str(tmp_path / 'model.pt'))
    e, f = loaded(*inputs)
    torch.testing.assert_close(e, energy, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(f, forces, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize('name', ['schnet', 'dtnn'])
def test_exported_energy_and_its_forces_equal_the_model(name, tmp_path):
    model = small_models()[name]
    batch, inputs = _inputs(model)
    energy, forces = model(batch, forces=True)
    program = export_energy(model, *inputs)
    torch.export.save(program, tmp_path / 'energy.pt2')
    module = torch.export.load(tmp_path / 'energy.pt2').module()
    pos = inputs[1].clone().requires_grad_(True)
    e = module(inputs[0], pos, *inputs[2:])
    f = -torch.autograd.grad(e.sum(), pos)[0]
    torch.testing.assert_close(e.detach(), energy, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(f, forces, rtol=1e-10, atol=1e-10)
    # Other structures, other numbers of atoms, pairs and graphs.
    others = [from_ase(molecule(name), torch.float64)
              for name in ('CH3COOH', 'H2O', 'NH3', 'C2H6')]
    other_batch, other_inputs = _inputs(model, others)
    torch.testing.assert_close(module(*other_inputs), model(other_batch),
                               rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize('layer', [ShiftedSoftplus(), Atomwise(8), CFConv(8),
                                   SchNetInteraction(8, 8, 10),
                                   DTNNInteraction(8, 8, 10),
                                   DTNNInteraction(8, 8, 10, cutoff=None)])
def test_layers_are_scriptable(layer):
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', DeprecationWarning)
        torch.jit.script(layer)


@pytest.mark.parametrize('structure', ['molecule', 'crystal'])
def test_export_from_one_structure(structure):
    # Regression (issue 17, case 10): one example structure failed with
    # torch's "Constraints violated"; the program must take any batch.
    model = small_models()['schnet']
    one = from_ase(molecule('CH3CH2OH') if structure == 'molecule' else
                   bulk('Cu', 'fcc', a=3.6) * (2, 1, 1), torch.float64)
    batch, inputs = _inputs(model, [one])
    module = export_energy(model, *inputs).module()
    torch.testing.assert_close(module(*inputs), model(batch), rtol=1e-10,
                               atol=1e-10)
    others = [from_ase(molecule(name), torch.float64)
              for name in ('H2O', 'NH3', 'C6H6')]
    other_batch, other_inputs = _inputs(model, others)
    torch.testing.assert_close(module(*other_inputs), model(other_batch),
                               rtol=1e-10, atol=1e-10)
