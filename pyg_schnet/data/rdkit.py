"""RDKit molecules and SMILES strings to :class:`Data`."""
import numbers
from typing import Optional

import torch
from torch_geometric.data import Data

from pyg_schnet.data.structure import atomistic_data


def _require_rdkit():
    try:
        from rdkit import Chem
        from rdkit.Chem import AllChem
    except ImportError as e:  # pragma: no cover - rdkit is a dependency
        raise ImportError('RDKit is needed: pip install rdkit') from e
    return Chem, AllChem


def from_rdkit(mol, conf_id: int = -1,
               dtype: torch.dtype = torch.float32) -> Data:
    r"""Converts a 3D conformer of an RDKit molecule to a :class:`Data` with
    :obj:`z` :obj:`[N]`, :obj:`pos` :obj:`[N, 3]` (Å) and :obj:`smiles`.
    Only atoms present in the molecule are used: call
    :func:`rdkit.Chem.AddHs` first for explicit hydrogens.

    Args:
        mol (rdkit.Chem.Mol): Molecule with at least one conformer.
        conf_id (int, optional): Conformer id (:obj:`-1`: the default one).
        dtype (torch.dtype, optional): Dtype of :obj:`pos`.

    Raises:
        ValueError: if the molecule has no conformer, the conformer id does
            not exist, or the conformer is 2D.
    """
    Chem, _ = _require_rdkit()
    if mol is None:
        raise ValueError('the RDKit molecule is None (a failed parse?)')
    if mol.GetNumConformers() == 0:
        raise ValueError('the RDKit molecule has no conformer: embed 3D '
                         'coordinates first (or use from_smiles)')
    try:
        conf = mol.GetConformer(conf_id)
    except ValueError as e:
        raise ValueError(f'conformer {conf_id} does not exist (the molecule '
                         f'has {mol.GetNumConformers()})') from e
    if not conf.Is3D():
        raise ValueError(f'conformer {conf_id} is 2D; embed 3D coordinates '
                         f'first')
    z = torch.tensor([a.GetAtomicNum() for a in mol.GetAtoms()],
                     dtype=torch.long)
    pos = torch.tensor(conf.GetPositions(), dtype=dtype)
    return atomistic_data(z, pos,
                          smiles=Chem.MolToSmiles(Chem.RemoveHs(mol)))


def from_smiles(smiles: str, seed: int = 0, optimize: bool = True,
                max_iters: Optional[int] = 2000,
                dtype: torch.dtype = torch.float32) -> Data:
    r"""A 3D structure for a SMILES string: parse, add hydrogens, embed
    coordinates with ETKDG (v3, random seed :obj:`seed`, so the result is
    reproducible) and, optionally, relax them with the MMFF94 force field.
    Positions are in Å.

    Args:
        smiles (str): The SMILES string.
        seed (int, optional): Random seed of the embedding.
            (default: :obj:`0`)
        optimize (bool, optional): MMFF94 optimisation after embedding
            (skipped with a clear error if MMFF has no parameters for the
            molecule). (default: :obj:`True`)
        max_iters (int, optional): MMFF iterations. (default: :obj:`2000`)
        dtype (torch.dtype, optional): Dtype of :obj:`pos`.

    Raises:
        ValueError: for an unparsable SMILES string or a failed embedding.
    """
    Chem, AllChem = _require_rdkit()
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) \
            or not 0 <= seed < 2**31:
        raise ValueError(f"'seed' must be an integer in 0..2**31-1 (got "
                         f"{seed!r})")
    if not isinstance(smiles, str) or not smiles.strip():
        raise ValueError(f'expected a SMILES string, got {smiles!r}')
    from rdkit import rdBase
    with rdBase.BlockLogs():  # the ValueError below says it more clearly
        mol = Chem.MolFromSmiles(smiles)
    if mol is None:
        raise ValueError(f'RDKit cannot parse the SMILES string {smiles!r}')
    mol = Chem.AddHs(mol)
    params = AllChem.ETKDGv3()
    params.randomSeed = int(seed)
    if AllChem.EmbedMolecule(mol, params) != 0:
        # Random starting coordinates rescue many hard cases.
        params.useRandomCoords = True
        if AllChem.EmbedMolecule(mol, params) != 0:
            raise ValueError(f'RDKit could not embed 3D coordinates for '
                             f'{smiles!r}')
    if optimize:
        if not AllChem.MMFFHasAllMoleculeParams(mol):
            raise ValueError(f'MMFF94 has no parameters for {smiles!r}; '
                             f'pass optimize=False')
        AllChem.MMFFOptimizeMolecule(mol, maxIters=max_iters)
    data = from_rdkit(mol, dtype=dtype)
    data.smiles = smiles
    return data
