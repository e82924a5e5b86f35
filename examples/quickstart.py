"""Energy and forces of a molecule from a SMILES string, in PyG style.

    python examples/quickstart.py

The model is untrained here (random weights): the point is the API. Train
one with `pyg-schnet train` and load it with pyg_schnet.models.load_model.
"""
import torch
from torch_geometric.data import Batch

from pyg_schnet.data import from_smiles
from pyg_schnet.models import SchNet

torch.manual_seed(0)
model = SchNet(hidden_channels=128, num_interactions=6, cutoff=5.0)
molecules = [from_smiles(s, seed=0) for s in ('CCO', 'c1ccccc1', 'CC(=O)O')]
batch = Batch.from_data_list(molecules)
energy, forces = model(batch, forces=True)  # eV [3], eV/Å [N, 3]
print(model)
for smiles, e in zip(('CCO', 'c1ccccc1', 'CC(=O)O'), energy.tolist(),
                     strict=True):
    print(f'{smiles:10s} E = {e:8.4f} eV')
print('forces on the first atoms (eV/Å):', forces[:2].tolist())
