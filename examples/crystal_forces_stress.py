"""Periodic structures: label rattled fcc alloys with EMT, then compute a
SchNet model's energy, forces and stress on them, with the graph built as a
PyG transform (image shifts in data.cell_offsets).

    python examples/crystal_forces_stress.py [OUT_DIR]

Writes only into OUT_DIR (default runs/examples/crystals, which git
ignores), never over a file of the working directory.
"""
import sys
from pathlib import Path

import torch
from ase.calculators.emt import EMT
from torch_geometric.loader import DataLoader

from pyg_schnet.data import AtomsDataset, label_structures, rattled_alloys
from pyg_schnet.graph import PeriodicRadiusGraph
from pyg_schnet.models import SchNet

out = Path(sys.argv[1] if len(sys.argv) > 1 else 'runs/examples/crystals')
out.mkdir(parents=True, exist_ok=True)
label_structures(rattled_alloys(8, seed=0), EMT, out / 'alloys.extxyz',
                 properties=('energy', 'forces', 'stress'))
dataset = AtomsDataset(out / 'alloys.extxyz', root=str(out / 'cache'),
                       pre_transform=PeriodicRadiusGraph(cutoff=5.0))
print(dataset[0])

torch.manual_seed(0)
model = SchNet(cutoff=5.0)
batch = next(iter(DataLoader(dataset, batch_size=4)))
energy, forces, stress = model(batch, forces=True, stress=True)
print('energies (eV):', energy.tolist())
print('EMT energies (eV):', batch.energy.tolist())
print('stress of structure 0 (eV/Å³):', stress[0].tolist())
