"""Energies and forces of molecules from SMILES strings with the
pretrained QM9 SchNet (shipped in the package; no download).

    python examples/quickstart.py
"""
from torch_geometric.data import Batch

from pyg_schnet.data import from_smiles
from pyg_schnet.models import load_pretrained

model, card = load_pretrained('schnet-qm9-U0')
print(f"{card['name']}: {card['architecture']}, test MAE "
      f"{card['test_mae_eV']:.4f} eV on {card['test_count']} QM9 molecules")
smiles = ('CCO', 'c1ccccc1', 'CC(=O)O')
molecules = [from_smiles(s, seed=0) for s in smiles]  # RDKit 3-D, MMFF94
energy, forces = model(Batch.from_data_list(molecules), forces=True)
for s, e in zip(smiles, energy.tolist(), strict=True):
    print(f'{s:10s} U0 = {e:12.4f} eV')
print('largest force (eV/Å):', float(forces.norm(dim=-1).max()))
