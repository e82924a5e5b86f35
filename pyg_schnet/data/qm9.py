"""QM9, offline, from the CSV files of the PyPI package ``qm9pack``."""
import importlib.util
import os.path as osp
import time
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional

import numpy as np
import torch
from ase.units import Bohr, Debye, Hartree
from torch import Tensor
from torch_geometric.data import Data

from pyg_schnet.data.cache import (
    CachedInMemoryDataset,
    atomic_save_dataset,
    pre_processing_key,
)
from pyg_schnet.data.structure import atomistic_data
from pyg_schnet.io import atomic_torch_save

_SYMBOLS = {'H': 1, 'C': 6, 'N': 7, 'O': 8, 'F': 9}

# Version of the processed file; a new one is made when the fields change.
_FORMAT = 'v3'


@dataclass(frozen=True)
class QM9Target:
    column: str  #: column of the qm9pack CSV
    unit: str  #: unit after conversion
    factor: float  #: multiplies the CSV value to give :attr:`unit`
    readout: str  #: natural aggregation, 'sum' or 'mean'
    description: str


#: The QM9 targets, converted from the CSV's atomic units.
QM9_TARGETS: Dict[str, QM9Target] = {
    'mu': QM9Target('Dipole_debye', 'e·Å', Debye, 'sum',
                    'dipole moment'),
    'alpha': QM9Target('Polarizability_bohr3', 'Å^3', Bohr**3, 'sum',
                       'isotropic polarizability'),
    'homo': QM9Target('HOMO_au', 'eV', Hartree, 'mean', 'HOMO energy'),
    'lumo': QM9Target('LUMO_au', 'eV', Hartree, 'mean', 'LUMO energy'),
    'gap': QM9Target('HOMO_LUMO_gap_au', 'eV', Hartree, 'mean',
                     'HOMO-LUMO gap'),
    'r2': QM9Target('R2_bohr2', 'Å^2', Bohr**2, 'sum',
                    'electronic spatial extent'),
    'zpve': QM9Target('ZPVE_au', 'eV', Hartree, 'sum',
                      'zero-point vibrational energy'),
    'U0': QM9Target('InternalEnergy_0K_au', 'eV', Hartree, 'sum',
                    'internal energy at 0 K'),
    'U': QM9Target('InternalEnergy_298K_au', 'eV', Hartree, 'sum',
                   'internal energy at 298.15 K'),
    'H': QM9Target('Enthalphy_298K_au', 'eV', Hartree, 'sum',
                   'enthalpy at 298.15 K'),
    'G': QM9Target('GibbsFreeEnergy_298K_au', 'eV', Hartree, 'sum',
                   'free energy at 298.15 K'),
    'cv': QM9Target('Heatcapacity_Cv_cal_mol_K', 'cal/(mol K)', 1.0, 'sum',
                    'heat capacity at 298.15 K'),
}

# Free-atom energies (Hartree) of the QM9 paper (Ramakrishnan et al., Sci.
# Data 1, 140022 (2014), the "atomref" table), B3LYP/6-31G(2df,p).
_ATOMREF_HARTREE = {
    'U0': {1: -0.500273, 6: -37.846772, 7: -54.583861, 8: -75.064579,
           9: -99.718730},
    'U': {1: -0.498857, 6: -37.845355, 7: -54.582445, 8: -75.063162,
          9: -99.717314},
    'H': {1: -0.497912, 6: -37.844411, 7: -54.581501, 8: -75.062219,
          9: -99.716370},
    'G': {1: -0.510927, 6: -37.861317, 7: -54.598897, 8: -75.079532,
          9: -99.733544},
}


def qm9_atomref(target: str, max_z: int = 100) -> Optional[Tensor]:
    r"""Free-atom reference energies (eV, float64, indexed by atomic number,
    :obj:`[max_z + 1]`) of :obj:`target` (:obj:`U0`, :obj:`U`, :obj:`H`,
    :obj:`G`), or :obj:`None` for targets without references."""
    if target not in _ATOMREF_HARTREE:
        return None
    ref = torch.zeros(max_z + 1, dtype=torch.float64)
    for z, value in _ATOMREF_HARTREE[target].items():
        ref[z] = value * Hartree
    return ref


def qm9pack_data_dir() -> str:
    r"""The folder of the CSV files of the installed ``qm9pack`` package,
    found without importing it (its ``__init__`` needs
    ``pkg_resources``, which current setuptools no longer ships)."""
    spec = importlib.util.find_spec('qm9pack')
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("QM9 needs the PyPI package 'qm9pack' "
                          "(pip install qm9pack)")
    path = osp.join(list(spec.submodule_search_locations)[0], 'data')
    if not osp.isfile(osp.join(path, 'qm9_part1.csv')):
        raise FileNotFoundError(f'qm9pack is installed but {path} holds no '
                                f'qm9_part*.csv files')
    return path


def read_qm9pack(max_molecules: Optional[int] = None) -> Dict[str, object]:
    r"""Reads the qm9pack CSVs into flat arrays: :obj:`z`, :obj:`pos` (Å),
    :obj:`num_atoms`, :obj:`idx` (QM9 index), :obj:`smiles` and every
    target of :data:`QM9_TARGETS` in its converted unit."""
    import pandas as pd

    folder = qm9pack_data_dir()
    columns = ['Index', 'SMILES', 'N_atoms', 'Elements', 'XYZ_Ang'] + \
        [t.column for t in QM9_TARGETS.values()]
    frames, remaining = [], max_molecules
    for part in (1, 2, 3):
        if remaining is not None and remaining <= 0:
            break
        frame = pd.read_csv(osp.join(folder, f'qm9_part{part}.csv'),
                            usecols=columns, nrows=remaining)
        frames.append(frame)
        if remaining is not None:
            remaining -= len(frame)
    df = pd.concat(frames, ignore_index=True)

    num_atoms = df['N_atoms'].to_numpy(np.int64)
    coords = ','.join(df['XYZ_Ang'].str.replace('[', '', regex=False)
                      .str.replace(']', '', regex=False))
    pos = np.array(coords.split(','), dtype=np.float64).reshape(-1, 3)
    symbols = ','.join(df['Elements'].str.slice(1, -1)).replace("'", '')
    symbols = symbols.split(',')
    unknown = set(symbols) - set(_SYMBOLS)
    if unknown:
        raise ValueError(f'unexpected elements in QM9: {sorted(unknown)}')
    z = np.array([_SYMBOLS[s] for s in symbols], dtype=np.int64)
    if len(z) != num_atoms.sum() or len(pos) != num_atoms.sum():
        raise ValueError('qm9pack CSV is inconsistent: the element and '
                         'coordinate lists do not match N_atoms')
    out: Dict[str, object] = dict(
        z=z, pos=pos, num_atoms=num_atoms,
        idx=df['Index'].to_numpy(np.int64),
        smiles=df['SMILES'].astype(str).tolist())
    for name, target in QM9_TARGETS.items():
        out[name] = df[target.column].to_numpy(np.float64) * target.factor
    out['polarizability'] = _polarizability_tensors(
        folder, out['idx']) * Bohr**3
    return out


def _polarizability_tensors(folder: str, idx: np.ndarray) -> np.ndarray:
    r"""The polarizability tensors :obj:`[M, 3, 3]` (bohr³) of the
    molecules with QM9 indices :obj:`idx`, from qm9pack's
    ``qm9_polarizability.csv`` (NaN where it has none). They are given in
    another frame than the geometries (acetylene's axis is x in the
    geometry and z in the tensor): only rotation invariants (eigenvalues,
    trace) of them are meaningful here."""
    import pandas as pd

    table = pd.read_csv(osp.join(folder, 'qm9_polarizability.csv'))
    number = table['XYZ_file'].str.extract(r'(\d+)\.xyz$')[0].astype(
        np.int64).to_numpy()
    values = table[['A_xx', 'A_xy', 'A_yy', 'A_xz', 'A_yz',
                    'A_zz']].to_numpy(np.float64)
    tensors = np.full((len(idx), 3, 3), np.nan)
    row = {int(k): r for r, k in enumerate(number)}
    for m, k in enumerate(idx.tolist()):
        r = row.get(int(k))
        if r is None:
            continue
        xx, xy, yy, xz, yz, zz = values[r]
        tensors[m] = [[xx, xy, xz], [xy, yy, yz], [xz, yz, zz]]
    return tensors


class QM9(CachedInMemoryDataset):
    r"""The QM9 dataset of 130,831 small organic molecules (up to 9 heavy
    atoms C, N, O, F) with DFT (B3LYP/6-31G(2df,p)) equilibrium geometries
    and properties, from `"Quantum chemistry structures and properties of
    134 kilo molecules" <https://www.nature.com/articles/sdata201422>`_,
    read offline from the CSV files of the PyPI package ``qm9pack``.

    Each :class:`Data` holds :obj:`z` :obj:`[N]`, :obj:`pos` :obj:`[N, 3]`
    (Å, float32), :obj:`cell` :obj:`[1, 3, 3]` (zeros) and :obj:`pbc`
    :obj:`[1, 3]` (False) like every structure of this package, :obj:`idx`
    (the QM9 index, 1..133885), :obj:`smiles` and one float64 field
    :obj:`[1]` per target:

    .. list-table::
        :header-rows: 1

        * - field
          - property
          - unit
        * - :obj:`mu`
          - dipole moment (the CSV's Debye converted)
          - e·Å
        * - :obj:`alpha`
          - isotropic polarizability (from bohr³)
          - Å³
        * - :obj:`polarizability`
          - polarizability tensor :obj:`[1, 3, 3]` (from bohr³), in
            another frame than :obj:`pos`: use its invariants
          - Å³
        * - :obj:`homo`, :obj:`lumo`, :obj:`gap`
          - HOMO, LUMO energies and their gap
          - eV
        * - :obj:`r2`
          - electronic spatial extent (from bohr²)
          - Å²
        * - :obj:`zpve`
          - zero-point vibrational energy
          - eV
        * - :obj:`U0`, :obj:`U`
          - internal energy at 0 K, 298.15 K
          - eV
        * - :obj:`H`, :obj:`G`
          - enthalpy, free energy at 298.15 K
          - eV
        * - :obj:`cv`
          - heat capacity at 298.15 K
          - cal/(mol K)

    Energies are total energies (1 Hartree = 27.211386 eV);
    :func:`qm9_atomref` gives the free-atom references of the QM9 paper for
    :obj:`U0`, :obj:`U`, :obj:`H`, :obj:`G`. Processing the full set
    (a few seconds of CSV parsing) happens once and is cached under
    :obj:`root`, written atomically.

    Args:
        root (str): Cache folder.
        max_molecules (int, optional): Keep only the first molecules (by
            QM9 index), e.g. for tests; :obj:`None` keeps all 130,831.
        transform, pre_transform, pre_filter (callable, optional): As in
            :class:`~torch_geometric.data.InMemoryDataset`.
    """
    def __init__(self, root: str, max_molecules: Optional[int] = None,
                 transform: Optional[Callable] = None,
                 pre_transform: Optional[Callable] = None,
                 pre_filter: Optional[Callable] = None,
                 force_reload: bool = False):
        if max_molecules is not None and max_molecules < 1:
            raise ValueError(f"'max_molecules' must be positive (got "
                             f'{max_molecules})')
        self.max_molecules = max_molecules
        super().__init__(root, transform, pre_transform, pre_filter,
                         force_reload=force_reload)
        self.load(self.processed_paths[0])

    @property
    def raw_file_names(self) -> List[str]:
        return []

    @property
    def processed_dir(self) -> str:
        # One folder per pre-processing, so PyG's record of the
        # pre-transform always matches the file next to it.
        return osp.join(self.root, 'processed',
                        pre_processing_key(self.pre_transform,
                                           self.pre_filter))

    @property
    def processed_file_names(self) -> List[str]:
        size = 'all' if self.max_molecules is None else \
            f'first{self.max_molecules}'
        return [f'qm9_{size}_{_FORMAT}.pt']

    def process(self):
        start = time.perf_counter()
        table = read_qm9pack(self.max_molecules)
        num_atoms = torch.tensor(table['num_atoms'])
        ptr = torch.cat([torch.zeros(1, dtype=torch.long),
                         num_atoms.cumsum(0)])
        num_mols = num_atoms.numel()
        fields = dict(z=torch.tensor(table['z']),
                      pos=torch.tensor(table['pos'], dtype=torch.float32),
                      cell=torch.zeros((num_mols, 3, 3)),
                      pbc=torch.zeros((num_mols, 3), dtype=torch.bool),
                      idx=torch.tensor(table['idx']))
        for name in QM9_TARGETS:
            fields[name] = torch.tensor(table[name])
        fields['polarizability'] = torch.tensor(table['polarizability'])

        if self.pre_transform is None and self.pre_filter is None:
            # Collated storage built directly: no 130k Data objects.
            data = Data(**fields, smiles=table['smiles'])
            step = torch.arange(num_mols + 1)
            slices = {key: step for key in fields}
            slices['z'] = slices['pos'] = ptr
            slices['smiles'] = step
            atomic_torch_save((data.to_dict(), slices, Data),
                              self.processed_paths[0])
        else:
            data_list = []
            for m in range(num_mols):
                a, b = int(ptr[m]), int(ptr[m + 1])
                d = atomistic_data(fields['z'][a:b], fields['pos'][a:b],
                                   idx=fields['idx'][m:m + 1],
                                   smiles=table['smiles'][m])
                for name in (*QM9_TARGETS, 'polarizability'):
                    d[name] = fields[name][m:m + 1]
                if self.pre_filter is not None and not self.pre_filter(d):
                    continue
                if self.pre_transform is not None:
                    d = self.pre_transform(d)
                data_list.append(d)
            atomic_save_dataset(data_list, self.processed_paths[0])
        self.processing_seconds = time.perf_counter() - start

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}({len(self)})'
