r"""The library side of ``pyg-schnet explain``: the molecule to look at,
the surface for the probe, and the numbers the command prints. Units: Å,
eV."""
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from torch import Tensor
from torch_geometric.data import Data

from pyg_schnet.interpret.potential import (
    atomic_energies,
    distance_sum_surface,
    inverse_distance_surface,
    vdw_surface,
)
from pyg_schnet.models import AtomisticModel


def explained_molecule(smiles: Optional[str] = None,
                       structure: Optional[str] = None,
                       remove: Sequence[int] = ()) -> Tuple[Data, str]:
    r"""One molecule in float64, from SMILES (3-D by RDKit, ETKDG + MMFF94,
    seed 0) or the last frame of a structure file, with the atoms
    :obj:`remove` taken out; and a name for titles.

    Raises:
        ValueError: without a molecule, or for an atom index out of range.
    """
    from pathlib import Path

    from ase import Atoms

    from pyg_schnet.data import from_ase, from_smiles, read_atoms
    if smiles:
        data, name = from_smiles(smiles, seed=0, dtype=torch.float64), smiles
    elif structure:
        data = from_ase(read_atoms(structure, index=-1), torch.float64)
        name = Path(structure).name
    else:
        raise ValueError('give the molecule with --smiles or --structure')
    if remove:
        keep = torch.ones(data.num_nodes, dtype=torch.bool)
        for k in remove:
            if not 0 <= k < data.num_nodes:
                raise ValueError(f'--remove-atom {k}: the molecule has atoms '
                                 f'0..{data.num_nodes - 1}')
            keep[k] = False
        data = from_ase(Atoms(numbers=data.z[keep].numpy(),
                              positions=data.pos[keep].numpy()),
                        torch.float64)
        name += f' without atom {", ".join(map(str, remove))}'
    return data, name


def probe_surface(data: Data, surface: str = 'vdw', offset: float = 1.0,
                  level: Optional[float] = None) -> Tensor:
    r"""The probe points :obj:`[M, 3]` (Å): :obj:`"vdw"` (:obj:`offset` Å
    beyond the van-der-Waals surface), :obj:`"inverse"` (the level set
    :math:`\sum_i 1/|r - r_i|` = :obj:`level` 1/Å) or
    :obj:`"distance-sum"` (:math:`\sum_i |r - r_i|` = :obj:`level` Å)."""
    if surface == 'vdw':
        return vdw_surface(data, offset=offset, density=6.0)
    if surface not in ('inverse', 'distance-sum'):
        raise ValueError(f"unknown surface {surface!r} (vdw, inverse, "
                         f"distance-sum)")
    if level is None:
        raise ValueError(f'--surface {surface} needs --level')
    if surface == 'inverse':
        return inverse_distance_surface(data, level)
    return distance_sum_surface(data, level)


def potential_extremes(data: Data, points: Tensor,
                       omega: Tensor) -> List[Dict[str, object]]:
    r"""The lowest and highest :math:`\Omega` (eV) on the surface, each
    with its nearest atom (symbol and index)."""
    from ase.data import chemical_symbols
    out = []
    for what, k in (('lowest', int(omega.argmin())),
                    ('highest', int(omega.argmax()))):
        nearest = int((data.pos - points[k]).norm(dim=-1).argmin())
        out.append({'what': what, 'value': float(omega[k]),
                    'atom': f'{chemical_symbols[int(data.z[nearest])]}'
                            f'{nearest}'})
    return out


def atomic_energy_table(model: AtomisticModel,
                        data: Data) -> Dict[str, object]:
    r"""The per-atom energies of a molecule (eV): :obj:`absolute` (what
    sums to the model's energy), :obj:`reference` (each element's free-atom
    reference energy, zeros for a model without references) and
    :obj:`relative` (absolute minus reference: what the picture
    colours), with :obj:`symbols`."""
    from ase.data import chemical_symbols
    absolute = atomic_energies(model, data)
    reference = model.atomref[data.z].to(absolute.dtype) \
        if model.use_atomref else torch.zeros_like(absolute)
    return {'symbols': [chemical_symbols[z] for z in data.z.tolist()],
            'absolute': absolute, 'reference': reference,
            'relative': absolute - reference,
            'has_reference': bool(model.use_atomref)}
