r"""Predictions for structure files: energies (eV), forces (eV/Å) and
stress (eV/Å³) of every structure, in batches, written back with the
input's coordinates. The library side of ``pyg-schnet predict``."""
import os
import warnings
from pathlib import Path
from typing import Dict, List, Sequence, Union

import numpy as np
from ase import Atoms

from pyg_schnet.data import from_ase
from pyg_schnet.models import AtomisticModel

PathLike = Union[str, os.PathLike]


def output_format(path: PathLike, overwrite: bool = False,
                  inputs: Sequence[PathLike] = ()) -> str:
    r"""The ASE format :obj:`path` will be written in, checked before any
    work is done, with the file's safety: an existing file is replaced
    only with :obj:`overwrite`, an input file never.

    Raises:
        ValueError: if :obj:`path` is one of :obj:`inputs`, or ASE cannot
            write its suffix.
        FileExistsError: if it exists and :obj:`overwrite` is not set.
    """
    from ase.io.formats import filetype, ioformats

    target = Path(path)
    for source in inputs:
        if source and target.exists() and Path(source).exists() and \
                target.resolve() == Path(source).resolve():
            raise ValueError(f'{path} is the input file; write the results '
                             f'to another file')
    if target.exists() and not overwrite:
        raise FileExistsError(f'{path} exists; pass --overwrite to replace '
                              f'it')
    suffix = target.suffix.lower()
    if suffix in ('.xyz', '.extxyz'):
        return 'extxyz'
    try:
        fmt = filetype(str(path), read=False)
    except Exception:
        fmt = None
    if fmt is None or fmt not in ioformats or not ioformats[fmt].can_write:
        raise ValueError(f"cannot write '{path}': ASE knows no writable "
                         f'format for the suffix {suffix or "(none)"!r} '
                         f'(use .extxyz, .traj or .db)')
    return fmt


def predict_structures(model: AtomisticModel, images: Sequence[Atoms],
                       forces: bool = False, stress: bool = False,
                       batch_size: int = 32, where: str = 'structures'
                       ) -> List[Dict[str, np.ndarray]]:
    r"""The model's predictions for every structure of :obj:`images`: a
    dict per structure with :obj:`energy` (eV), and as asked
    :obj:`forces` :obj:`[N, 3]` (eV/Å) and :obj:`stress` (Voigt, eV/Å³,
    ASE's sign convention). A model with property heads adds, for
    molecules, :obj:`dipole` (e·Å) and :obj:`charges` (e),
    :obj:`polarizability` (:obj:`[3, 3]`, Å³) and :obj:`spatial_extent`
    (Å²).

    Every structure is checked before the first model call (unknown
    elements, non-finite positions, singular cells, overlapping atoms,
    :obj:`stress` of a non-periodic structure), the error naming
    :obj:`where` and the structure.

    Raises:
        ValueError: for a structure that cannot be predicted.
    """
    from ase.stress import full_3x3_to_voigt_6_stress
    from torch_geometric.loader import DataLoader

    from pyg_schnet.graph import check_geometry

    dtype = next(model.parameters()).dtype
    structures = []
    for k, atoms in enumerate(images):
        try:
            data = from_ase(atoms, dtype=dtype)
            check_geometry(data.z, data.pos, data.cell, data.pbc,
                           min_distance=model.min_distance,
                           max_z=model.max_z)
        except ValueError as e:
            raise ValueError(f'{where}, structure {k}: {e}') from None
        if stress and not atoms.pbc.any():
            raise ValueError(f'{where}, structure {k}: --stress needs '
                             f'periodic structures; this one has no '
                             f'periodic direction')
        for key in ('energy', 'forces', 'stress'):
            if key in data:
                del data[key]
        structures.append(data)
    results: List[Dict[str, np.ndarray]] = []
    heads = bool(model.property_heads()) and not any(
        bool(d.pbc.any()) for d in structures)
    for batch in DataLoader(structures, batch_size=batch_size):
        with warnings.catch_warnings():  # the caller reports unseen ones
            warnings.filterwarnings('ignore', message='elements .* were not')
            if heads:
                table = model.compute(batch, forces=forces, stress=stress)
                out = tuple(table[key] for key in ('energy', 'forces',
                                                   'stress') if key in table)
            else:
                out = model(batch, forces=forces, stress=stress)
        out = out if isinstance(out, tuple) else (out, )
        energy, rest = out[0].detach(), list(out[1:])
        f = rest.pop(0) if forces else None
        s = rest.pop(0) if stress else None
        for k in range(batch.num_graphs):
            result = {'energy': float(energy[k])}
            if heads:
                atom = batch.batch == k
                for key in ('dipole', 'polarizability', 'spatial_extent'):
                    if key in table:
                        result[key] = table[key][k].detach().double() \
                            .cpu().numpy()
                if 'charges' in table:
                    result['charges'] = table['charges'][atom].detach() \
                        .double().cpu().numpy()
            if f is not None:
                result['forces'] = f[batch.batch == k].detach().double() \
                    .cpu().numpy()
            if s is not None:
                result['stress'] = full_3x3_to_voigt_6_stress(
                    s[k].detach().double().cpu().numpy())
            results.append(result)
    return results


def write_predictions(images: Sequence[Atoms],
                      results: Sequence[Dict[str, np.ndarray]],
                      path: PathLike, fmt: str) -> None:
    r"""Writes :obj:`images` (their own coordinates) with
    :obj:`results` attached as single-point results, atomically."""
    import ase.io
    from ase.calculators.singlepoint import SinglePointCalculator

    from pyg_schnet.io import atomic_path
    out = []
    for atoms, result in zip(images, results, strict=True):
        atoms = atoms.copy()
        result = dict(result)
        for key in ('polarizability', 'spatial_extent'):  # not ASE's names
            if key in result:
                atoms.info[key] = result.pop(key)
        atoms.calc = SinglePointCalculator(atoms, **result)
        out.append(atoms)
    with atomic_path(path) as tmp:
        ase.io.write(tmp, out, format=fmt)
