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
    :obj:`"xtb"` (GFN2-xTB through ``tblite``) or :obj:`"chgnet"` (the
    pretrained CHGNet; batched: :func:`chgnet_labels`). Any other ASE
    calculator
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
    if name == 'chgnet':
        try:
            from chgnet.model.dynamics import CHGNetCalculator
        except ImportError as e:
            raise ImportError("CHGNet needs 'chgnet' (pip install -e "
                              "'.[materials]')") from e
        return CHGNetCalculator(verbose=False)
    raise ValueError(f"unknown calculator '{name}' (choose emt, xtb or "
                     f"chgnet, or pass an ASE calculator object)")


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
            :obj:`"forces"`, :obj:`"stress"` (periodic structures),
            :obj:`"dipole"` (molecules, e·Å; e.g. GFN2-xTB's).
            (default: :obj:`("energy", "forces")`)
        format (str, optional): ASE format name.

    Returns:
        The labelled structures.
    """
    unknown = set(properties) - {'energy', 'forces', 'stress', 'dipole'}
    if unknown:
        raise ValueError(f'unknown properties {sorted(unknown)} (choose '
                         f'energy, forces, stress, dipole)')
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
            if 'dipole' in properties and not atoms.pbc.any():
                results['dipole'] = atoms.get_dipole_moment()
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


#: Elements of the periodic-table study (groups 1-17, periods 2-6; no
#: noble gases, lanthanides, Tc, Po, At): 61 elements.
PROTOTYPE_ELEMENTS = (
    'Li Be B C N O F '
    'Na Mg Al Si P S Cl '
    'K Ca Sc Ti V Cr Mn Fe Co Ni Cu Zn Ga Ge As Se Br '
    'Rb Sr Y Zr Nb Mo Ru Rh Pd Ag Cd In Sn Sb Te I '
    'Cs Ba Hf Ta W Re Os Ir Pt Au Hg Tl Pb Bi').split()

#: The anion-forming elements that :func:`prototype_crystals` puts on
#: the X site of perovskites and of half the binaries.
ANIONS = ('O', 'F', 'Cl', 'Br', 'I', 'S', 'Se', 'N')

#: The crystal prototypes of :func:`prototype_crystals`, by number of
#: species.
PROTOTYPES = {1: ('fcc', 'bcc', 'hcp', 'diamond'),
              2: ('rocksalt', 'cesiumchloride', 'zincblende', 'wurtzite',
                  'fluorite'),
              3: ('perovskite', )}


def _bond(a: str, b: str) -> float:
    r"""A nearest-neighbour distance (Å) for atoms :obj:`a` and :obj:`b`:
    1.1 times the sum of their covalent radii (ASE's table)."""
    from ase.data import covalent_radii
    return 1.1 * (covalent_radii[atomic_numbers[a]] +
                  covalent_radii[atomic_numbers[b]])


def prototype_crystal(kind: str, species: Sequence[str]) -> Atoms:
    r"""One unstrained crystal of prototype :obj:`kind` with the elements
    :obj:`species` (1, 2 or 3 of them, see :data:`PROTOTYPES`), its
    lattice constant set so that the nearest neighbours sit at
    :func:`_bond` distance. Fluorite is :math:`AX_2`, perovskite
    :math:`ABX_3` (cubic, B at the centre)."""
    from ase.spacegroup import crystal
    a = species[0]
    if kind in PROTOTYPES[1]:
        d = _bond(a, a)
        lattice = {'fcc': d * 2**0.5, 'bcc': d * 2 / 3**0.5,
                   'hcp': d, 'diamond': d * 4 / 3**0.5}[kind]
        if kind == 'hcp':
            return bulk(a, 'hcp', a=lattice, c=lattice * (8 / 3)**0.5)
        return bulk(a, kind, a=lattice)
    if kind in PROTOTYPES[2]:
        x = species[1]
        d = _bond(a, x)
        if kind == 'rocksalt':
            return bulk(f'{a}{x}', 'rocksalt', a=2 * d)
        if kind == 'cesiumchloride':
            return bulk(f'{a}{x}', 'cesiumchloride', a=2 * d / 3**0.5)
        if kind == 'zincblende':
            return bulk(f'{a}{x}', 'zincblende', a=4 * d / 3**0.5)
        if kind == 'wurtzite':
            lattice = d * (8 / 3)**0.5
            return bulk(f'{a}{x}', 'wurtzite', a=lattice,
                        c=lattice * (8 / 3)**0.5)
        if kind == 'fluorite':
            return bulk(f'{a}{x}2', 'fluorite', a=4 * d / 3**0.5)
    if kind == 'perovskite':
        b, x = species[1], species[2]
        lattice = max(2 * _bond(b, x), 2**0.5 * _bond(a, x))
        return crystal([a, b, x], basis=[(0, 0, 0), (0.5, 0.5, 0.5),
                                         (0.5, 0.5, 0)],
                       spacegroup=221, cellpar=[lattice] * 3 + [90] * 3)
    raise ValueError(f'unknown prototype {kind!r} (known: '
                     f'{[k for v in PROTOTYPES.values() for k in v]})')


def prototype_crystals(count: int,
                       elements: Sequence[str] = PROTOTYPE_ELEMENTS,
                       strain: float = 0.05, rattle: float = 0.05,
                       seed: int = 0) -> List[Atoms]:
    r""":obj:`count` strained and rattled prototype crystals covering
    :obj:`elements`: in turn an elemental (fcc, bcc, hcp, diamond), a
    binary (rock salt, CsCl, zinc blende, wurtzite, fluorite) and a ternary
    (cubic perovskite :math:`ABX_3`) structure, the elements drawn at
    random (X of perovskites and of every second binary from
    :data:`ANIONS`), each cell scaled to a random volume within
    :math:`\pm` :obj:`strain` (a fraction), sheared by up to a tenth of
    that, and every atom displaced by Gaussian noise of :obj:`rattle` Å.
    Varied configurations across the periodic table for a universal
    potential (CHGNet) to label."""
    if count < 1:
        raise ValueError(f"'count' must be at least 1 (got {count})")
    for e in elements:
        if e not in atomic_numbers:
            raise ValueError(f'unknown element {e!r}')
    rng = np.random.default_rng(seed)
    out = []
    for k in range(count):
        species_count = (1, 2, 3)[k % 3]
        kinds = PROTOTYPES[species_count]
        kind = kinds[int(rng.integers(len(kinds)))]
        species = [elements[int(i)] for i in rng.choice(
            len(elements), size=species_count, replace=False)]
        anions = [e for e in ANIONS if e in elements and e not in species]
        # X of a perovskite, and of every second binary, is an anion (the
        # compounds a universal potential knows best).
        if anions and (species_count == 3 or
                       (species_count == 2 and k % 2 == 0)):
            species[-1] = anions[int(rng.integers(len(anions)))]
        atoms = prototype_crystal(kind, species)
        scale = (1.0 + rng.uniform(-strain, strain))**(1.0 / 3.0)
        shear = rng.uniform(-0.1 * strain, 0.1 * strain, (3, 3))
        shear = 0.5 * (shear + shear.T)
        atoms.set_cell(np.asarray(atoms.cell) @ (scale * np.eye(3) + shear),
                       scale_atoms=True)
        start = atoms.positions.copy()
        reach = 1.5 * max(_bond(a, b) for a in species for b in species)
        closest = _closest(atoms, reach)
        for _ in range(20):  # no pair pushed below 70 % of its distance
            atoms.positions = start + rng.normal(0.0, rattle, start.shape)
            if _closest(atoms, reach) >= 0.7 * closest:
                break
        else:
            atoms.positions = start
        atoms.info['prototype'] = kind
        out.append(atoms)
    return out


def _closest(atoms: Atoms, reach: float) -> float:
    r"""The shortest distance (Å) between two atoms or periodic images,
    looked for within :obj:`reach` Å (:obj:`reach` when none is closer)."""
    from ase.neighborlist import neighbor_list
    d = neighbor_list('d', atoms, reach)
    return float(d.min()) if len(d) else reach


def chgnet_labels(structures: Sequence[Atoms],
                  path: Optional[Union[str, os.PathLike]] = None,
                  batch_size: int = 64, progress: Optional[Callable] = None
                  ) -> List[Atoms]:
    r"""Energies (eV), forces (eV/Å) and stress (eV/Å³, ASE's sign
    convention) of :obj:`structures` from the pretrained CHGNet (the
    weights inside the ``chgnet`` wheel, offline; trained on the Materials
    Project's MPtrj relaxations), predicted in batches of
    :obj:`batch_size`, written to :obj:`path` atomically like
    :func:`label_structures`. The same numbers as CHGNet's own ASE
    calculator (tested).

    Raises:
        ImportError: if ``chgnet`` is not installed (``pip install -e
            ".[materials]"``).
    """
    try:
        from chgnet.model import CHGNet
        from pymatgen.io.ase import AseAtomsAdaptor
    except ImportError as e:
        raise ImportError("CHGNet labels need 'chgnet' (pip install -e "
                          "'.[materials]')") from e
    from ase import units
    from ase.stress import full_3x3_to_voigt_6_stress
    model = CHGNet.load(verbose=False)
    labelled: List[Atoms] = []
    for start in range(0, len(structures), batch_size):
        chunk = list(structures[start:start + batch_size])
        predictions = model.predict_structure(
            [AseAtomsAdaptor.get_structure(a) for a in chunk], task='efs',
            batch_size=batch_size)
        if isinstance(predictions, dict):
            predictions = [predictions]
        for atoms, p in zip(chunk, predictions, strict=True):
            atoms = atoms.copy()
            # CHGNet: energy per atom (eV), forces (eV/Å), stress in GPa
            # with ASE's sign (its calculator multiplies by units.GPa).
            atoms.calc = SinglePointCalculator(
                atoms, energy=float(p['e']) * len(atoms),
                forces=np.asarray(p['f'], dtype=float),
                stress=full_3x3_to_voigt_6_stress(
                    np.asarray(p['s'], dtype=float).reshape(3, 3)) *
                units.GPa)
            labelled.append(atoms)
        if progress is not None:
            progress(len(labelled), len(structures))
    if path is not None:
        with atomic_path(path) as tmp:
            ase.io.write(tmp, labelled, format=_format(path))
    return labelled
