"""Conversion between ASE :class:`~ase.Atoms` and PyG :class:`Data`."""
import warnings
from typing import List, Optional, Union

import numpy as np
import torch
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator
from ase.stress import (
    full_3x3_to_voigt_6_stress,
    voigt_6_to_full_3x3_stress,
)
from torch_geometric.data import Batch, Data

from pyg_schnet.data.structure import atomistic_data


def _stored_results(atoms: Atoms) -> dict:
    r"""Labels already attached to :obj:`atoms` (a calculator's stored
    results, e.g. from an extxyz or ASE db file, or :obj:`atoms.info` and
    :obj:`atoms.arrays`), never computed here.

    A calculator's results are used only while they belong to the atoms as
    they are now: ASE keeps the state (positions, numbers, cell, pbc) the
    results were computed for, and a calculator would recompute after any
    change. Stale results are dropped with a warning rather than attached
    to structures they do not describe."""
    results = {}
    calc = atoms.calc
    if calc is not None and getattr(calc, 'results', None):
        changed = calc.check_state(atoms) if hasattr(calc, 'check_state') \
            else []
        if changed:
            warnings.warn(
                f'{atoms.get_chemical_formula()}: the calculator results '
                f'({", ".join(sorted(calc.results))}) were computed before '
                f'the atoms changed ({", ".join(changed)}); they are stale '
                f'and not used as labels', stacklevel=3)
        else:
            results.update(calc.results)
    for key in ('energy', 'free_energy', 'stress', 'dipole'):
        if key not in results and key in atoms.info:
            results[key] = atoms.info[key]
    if 'forces' not in results and 'forces' in atoms.arrays:
        results['forces'] = atoms.arrays['forces']
    return results


def from_ase(atoms: Atoms, dtype: torch.dtype = torch.float32) -> Data:
    r"""Converts an :class:`ase.Atoms` to a :class:`Data` with :obj:`z`
    :obj:`[N]`, :obj:`pos` :obj:`[N, 3]` (Å), :obj:`cell` :obj:`[1, 3, 3]`
    (row vectors, Å; zeros for molecules) and :obj:`pbc` :obj:`[1, 3]`.

    Labels the atoms already carry (stored calculator results, as read from
    extxyz/traj/db files, or :obj:`atoms.info`) become :obj:`energy`
    :obj:`[1]` (eV, float64), :obj:`forces` :obj:`[N, 3]` (eV/Å),
    :obj:`stress` :obj:`[1, 3, 3]` (eV/Å³, ASE's sign convention),
    :obj:`dipole` :obj:`[1, 3]` (e·Å, float64) and the total charge
    :obj:`charge` :obj:`[1]` (e, from :obj:`atoms.info`). No
    calculation is started; results computed before the atoms were moved
    are not used (with a warning).

    Args:
        atoms (ase.Atoms): The structure.
        dtype (torch.dtype, optional): Floating dtype of positions, cell,
            forces and stress. (default: :obj:`torch.float32`)

    Raises:
        ValueError: for unknown elements, non-finite positions or cells, or
            labels of the wrong shape.
    """
    if not isinstance(atoms, Atoms):
        raise ValueError(f'expected ase.Atoms, got {type(atoms).__name__}')
    num = len(atoms)
    z = torch.as_tensor(atoms.numbers, dtype=torch.long)
    pos = torch.as_tensor(np.asarray(atoms.positions), dtype=dtype)
    cell = torch.as_tensor(np.asarray(atoms.cell), dtype=dtype).view(1, 3, 3)
    pbc = torch.as_tensor(np.asarray(atoms.pbc), dtype=torch.bool).view(1, 3)
    data = atomistic_data(z, pos, cell, pbc)
    results = _stored_results(atoms)
    for key, value in results.items():
        if key in ('energy', 'free_energy', 'forces', 'stress', 'dipole') \
                and \
                value is not None and \
                not np.isfinite(np.asarray(value, dtype=float)).all():
            raise ValueError(f"the '{key}' label is not finite (NaN or inf)")
    energy = results.get('energy', results.get('free_energy'))
    if energy is not None:
        energy = np.asarray(energy, dtype=float)
        if energy.size != 1:
            raise ValueError(f'the energy label must be one number, got '
                             f'shape {list(energy.shape)}')
        data.energy = torch.tensor([float(energy.reshape(-1)[0])],
                                   dtype=torch.float64)
    if results.get('forces') is not None:
        forces = np.asarray(results['forces'], dtype=float)
        if forces.shape != (num, 3):
            raise ValueError(f'the forces label must have shape [{num}, 3] '
                             f'(one vector per atom, eV/Å), got '
                             f'{list(forces.shape)}')
        data.forces = torch.as_tensor(forces, dtype=dtype)
    if results.get('stress') is not None:
        stress = np.asarray(results['stress'], dtype=float)
        if stress.shape == (6, ):
            stress = voigt_6_to_full_3x3_stress(stress)
        elif stress.shape not in ((3, 3), (1, 3, 3), (9, )):
            raise ValueError(f'the stress label must have 6 (Voigt) or 9 '
                             f'entries (eV/Å³), got shape '
                             f'{list(stress.shape)}')
        data.stress = torch.as_tensor(stress, dtype=dtype).view(1, 3, 3)
    if results.get('dipole') is not None:
        dipole = np.asarray(results['dipole'], dtype=float)
        if dipole.shape != (3, ):
            raise ValueError(f'the dipole label must be one vector of 3 '
                             f'components (e·Å), got shape '
                             f'{list(dipole.shape)}')
        data.dipole = torch.as_tensor(dipole, dtype=torch.float64).view(1, 3)
    if 'charge' in atoms.info:
        charge = float(atoms.info['charge'])
        if not np.isfinite(charge):
            raise ValueError("the total charge (atoms.info['charge']) is not "
                             "finite")
        data.charge = torch.tensor([charge], dtype=torch.float64)
    return data


def to_ase(data: Union[Data, Batch]) -> Union[Atoms, List[Atoms]]:
    r"""Converts a :class:`Data` back to :class:`ase.Atoms` (a list for a
    :class:`Batch`). :obj:`energy`, :obj:`forces` and :obj:`stress` are
    attached as a :class:`~ase.calculators.singlepoint.SinglePointCalculator`.
    """
    if isinstance(data, Batch):
        return [to_ase(d) for d in data.to_data_list()]
    cell: Optional[torch.Tensor] = data.get('cell')
    pbc: Optional[torch.Tensor] = data.get('pbc')
    atoms = Atoms(
        numbers=data.z.detach().cpu().numpy(),
        positions=data.pos.detach().cpu().double().numpy(),
        cell=None if cell is None else
        cell.detach().cpu().double().view(3, 3).numpy(),
        pbc=False if pbc is None else pbc.detach().cpu().view(3).numpy())
    results = {}
    if data.get('energy') is not None:
        results['energy'] = float(data.energy.view(-1)[0])
    if data.get('forces') is not None:
        results['forces'] = data.forces.detach().cpu().double().numpy()
    if data.get('stress') is not None:
        results['stress'] = full_3x3_to_voigt_6_stress(
            data.stress.detach().cpu().double().view(3, 3).numpy())
    if results:
        atoms.calc = SinglePointCalculator(atoms, **results)
    return atoms
