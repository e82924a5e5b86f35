"""Reference labels from real calculators (EMT, GFN2-xTB, PySCF, any ASE
calculator), written as extxyz or ASE-db datasets."""
import os
from typing import Callable, Iterable, List, Optional, Sequence, Union

import ase.io
import numpy as np
import torch
from ase import Atoms
from ase.build import bulk
from ase.calculators.calculator import Calculator
from ase.calculators.singlepoint import SinglePointCalculator
from ase.data import atomic_numbers, reference_states

from pyg_schnet.io import atomic_path

CalculatorFactory = Union[Calculator, Callable[[], Calculator]]

#: fcc metals of ASE's EMT potential.
EMT_METALS = ('Al', 'Ni', 'Cu', 'Pd', 'Ag', 'Pt', 'Au')


def make_calculator(name: str) -> Calculator:
    r"""An ASE calculator by name: :obj:`"emt"` (ASE's effective-medium
    theory; Al, Ni, Cu, Pd, Ag, Pt, Au, and roughly H, C, N, O),
    or :obj:`"xtb"` (GFN2-xTB through ``tblite``). Any other ASE calculator
    (e.g. a PySCF/DFT one) can be passed to :func:`label_structures`
    directly."""
    name = name.lower()
    if name == 'emt':
        from ase.calculators.emt import EMT
        return EMT()
    if name in ('xtb', 'gfn2-xtb', 'tblite'):
        try:
            from tblite.ase import TBLite
        except ImportError as e:
            raise ImportError("GFN2-xTB needs 'tblite' (pip install "
                              "tblite)") from e
        return TBLite(method='GFN2-xTB', verbosity=0)
    raise ValueError(f"unknown calculator '{name}' (choose emt or xtb, or "
                     f"pass an ASE calculator object)")


def label_structures(
    structures: Iterable[Atoms],
    calculator: CalculatorFactory,
    path: Optional[Union[str, os.PathLike]] = None,
    properties: Sequence[str] = ('energy', 'forces'),
    format: Optional[str] = None,
) -> List[Atoms]:
    r"""Computes reference labels for :obj:`structures` with an ASE
    calculator and (optionally) writes them to :obj:`path`.

    Each structure is copied, labelled, and carries a
    :class:`~ase.calculators.singlepoint.SinglePointCalculator` with the
    results (energy in eV, forces in eV/Å, stress in eV/Å³ for periodic
    structures), so :func:`~pyg_schnet.data.from_ase` and
    :class:`~pyg_schnet.data.AtomsDataset` read them back. The file, in any
    format :func:`ase.io.write` knows (extxyz, traj, ASE ``.db``; inferred
    from the suffix unless :obj:`format` is given), is written atomically:
    an interrupted run leaves an existing file untouched.

    Args:
        structures (iterable of ase.Atoms): The structures.
        calculator: An ASE calculator, or a function returning one.
        path (str, optional): Output file. (default: :obj:`None`, no file)
        properties (sequence of str, optional): :obj:`"energy"`,
            :obj:`"forces"`, :obj:`"stress"`.
            (default: :obj:`("energy", "forces")`)
        format (str, optional): ASE format name.

    Returns:
        The labelled structures.
    """
    unknown = set(properties) - {'energy', 'forces', 'stress'}
    if unknown:
        raise ValueError(f'unknown properties {sorted(unknown)} (choose '
                         f'energy, forces, stress)')
    labelled = []
    for k, atoms in enumerate(structures):
        atoms = atoms.copy()
        calc = calculator() if callable(calculator) and \
            not isinstance(calculator, Calculator) else calculator
        atoms.calc = calc
        results = {}
        try:
            results['energy'] = atoms.get_potential_energy()
            if 'forces' in properties:
                results['forces'] = atoms.get_forces()
            if 'stress' in properties and atoms.pbc.all():
                results['stress'] = atoms.get_stress()
        except Exception as e:
            raise ValueError(f'the calculator failed on structure {k} '
                             f'({atoms.get_chemical_formula()}): {e}') \
                from e
        atoms.calc = SinglePointCalculator(atoms, **results)
        labelled.append(atoms)
    if path is not None:
        with atomic_path(path) as tmp:
            ase.io.write(tmp, labelled, format=format or _format(path))
    return labelled


def _format(path: Union[str, os.PathLike]) -> Optional[str]:
    suffix = os.fspath(path).rsplit('.', 1)[-1].lower()
    return {'xyz': 'extxyz', 'extxyz': 'extxyz', 'db': 'db',
            'traj': 'traj'}.get(suffix)


def rattled_alloys(count: int, elements: Sequence[str] = EMT_METALS,
                   repeat: int = 2, rattle: float = 0.1,
                   strain: float = 0.03, seed: int = 0) -> List[Atoms]:
    r"""Random fcc alloys of two of :obj:`elements` in cubic supercells
    (:obj:`4 * repeat³` atoms), with the lattice constant from Vegard's law
    (ASE's reference lattice constants, Å), a random symmetric strain of up
    to :obj:`strain` and Gaussian displacements of :obj:`rattle` Å: varied,
    physical configurations for an EMT dataset."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(count):
        pair = rng.choice(len(elements), size=2, replace=False)
        pair = [elements[int(p)] for p in pair]
        atoms = bulk(pair[0], 'fcc', a=1.0, cubic=True).repeat(repeat)
        fraction = rng.uniform(0.0, 1.0)
        mask = rng.random(len(atoms)) < fraction
        symbols = np.where(mask, pair[1], pair[0])
        atoms.set_chemical_symbols(symbols.tolist())
        a = sum(reference_states[atomic_numbers[s]]['a'] for s in symbols)
        a /= len(symbols)
        eps = rng.uniform(-strain, strain, (3, 3))
        eps = 0.5 * (eps + eps.T)
        atoms.set_cell(np.asarray(atoms.cell) * a @ (np.eye(3) + eps),
                       scale_atoms=True)
        atoms.positions += rng.normal(0.0, rattle, atoms.positions.shape)
        out.append(atoms)
    return out


def molecule_snapshots(smiles: Sequence[str], per_molecule: int = 10,
                       rattle: float = 0.05, seed: int = 0) -> List[Atoms]:
    r"""Snapshots of small molecules for a GFN2-xTB (or DFT) dataset: each
    SMILES is embedded with ETKDG and relaxed with MMFF94
    (:func:`~pyg_schnet.data.rdkit.from_smiles`), then displaced by Gaussian
    noise of :obj:`rattle` Å, :obj:`per_molecule` times."""
    from pyg_schnet.data.rdkit import from_smiles

    rng = np.random.default_rng(seed)
    out = []
    for k, s in enumerate(smiles):
        data = from_smiles(s, seed=seed + k, dtype=torch.float64)
        base = Atoms(numbers=data.z.numpy(), positions=data.pos.numpy())
        for _ in range(per_molecule):
            atoms = base.copy()
            atoms.positions += rng.normal(0.0, rattle, atoms.positions.shape)
            out.append(atoms)
    return out
