r"""ASE constraints in the MD engine: :class:`ase.constraints.FixAtoms` is
honoured, every other constraint is refused (never silently ignored)."""
from typing import Sequence

import torch
from ase import Atoms
from torch import Tensor


def free_atoms_mask(structures: Sequence[Atoms]) -> Tensor:
    r"""The atoms that move, a bool mask :obj:`[N]`: all atoms but those of
    a :class:`~ase.constraints.FixAtoms` constraint (the same in every
    structure).

    Raises:
        ValueError: for any other constraint (named), or structures whose
            fixed atoms differ.
    """
    from ase.constraints import FixAtoms

    masks = []
    for k, atoms in enumerate(structures):
        free = torch.ones(len(atoms), dtype=torch.bool)
        for constraint in atoms.constraints:
            if not isinstance(constraint, FixAtoms):
                where = f'structure {k}: ' if len(structures) > 1 else ''
                raise ValueError(
                    f'{where}the constraint {type(constraint).__name__} is '
                    f'not supported by RingPolymerMD, which honours only '
                    f'FixAtoms: remove it (atoms.set_constraint()) or run '
                    f"ASE's MD drivers with SchNetCalculator")
            free[torch.as_tensor(constraint.get_indices(),
                                 dtype=torch.long)] = False
        masks.append(free)
    for k, mask in enumerate(masks):
        if not torch.equal(mask, masks[0]):
            raise ValueError(f'structure {k} fixes other atoms than '
                             f'structure 0: the systems of one batch must '
                             f'fix the same atoms')
    return masks[0]
