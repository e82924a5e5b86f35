"""The learned element embeddings and their principal components."""
from typing import Dict, Sequence, Union

import torch
from ase.data import atomic_numbers, chemical_symbols

from pyg_schnet.models import AtomisticModel

#: Periodic-table group of each element (1-18; 0 for lanthanides and
#: actinides), by atomic number.
GROUPS = {}
for _z in range(1, 104):
    _sym = chemical_symbols[_z]
    if _z in (1, 3, 11, 19, 37, 55, 87):
        GROUPS[_z] = 1
    elif _z in (4, 12, 20, 38, 56, 88):
        GROUPS[_z] = 2
    elif 57 <= _z <= 71 or 89 <= _z <= 103:
        GROUPS[_z] = 0 if _z not in (71, 103) else 3
    elif _z in (2, 10, 18, 36, 54, 86):
        GROUPS[_z] = 18
    elif _z <= 10:
        GROUPS[_z] = _z + 8  # B..F: 13..17
    elif _z <= 18:
        GROUPS[_z] = _z  # Al..Cl: 13..17
    elif _z <= 36:
        GROUPS[_z] = _z - 18
    elif _z <= 54:
        GROUPS[_z] = _z - 36
    else:
        GROUPS[_z] = _z - 68 if _z <= 86 else _z - 100


def element_embeddings(model: AtomisticModel,
                       elements: Sequence[Union[int, str]]
                       ) -> Dict[str, object]:
    r"""The learned embeddings :math:`\mathbf{x}^0_Z` of :obj:`elements`
    (atomic numbers or symbols) and their first two principal components.

    Returns:
        A dict: :obj:`numbers`, :obj:`symbols`, :obj:`groups` (periodic
        table), :obj:`vectors` :obj:`[K, F]`, :obj:`components`
        :obj:`[K, 2]` (projections on the first two principal axes of the
        centred vectors) and :obj:`explained_variance` :obj:`[2]` (the
        fraction of the total variance along each).
    """
    numbers = []
    for e in elements:
        z = atomic_numbers.get(e) if isinstance(e, str) else int(e)
        if z is None or not 1 <= z <= model.max_z:
            raise ValueError(f'unknown element {e!r} (the model embeds '
                             f'1..{model.max_z})')
        numbers.append(z)
    if len(numbers) < 3:
        raise ValueError('give at least three elements for a principal '
                         'component analysis')
    with torch.no_grad():
        vectors = model.embedding.weight[numbers].double().cpu()
    centred = vectors - vectors.mean(dim=0)
    _, s, vh = torch.linalg.svd(centred, full_matrices=False)
    variance = s**2
    components = centred @ vh[:2].T
    # A fixed sign per axis (the largest |loading| positive) for
    # reproducible pictures.
    sign = torch.sign(vh[:2].gather(1, vh[:2].abs().argmax(dim=1,
                                                            keepdim=True)))
    components = components * sign.view(1, 2)
    return {'numbers': numbers,
            'symbols': [chemical_symbols[z] for z in numbers],
            'groups': [GROUPS.get(z, 0) for z in numbers],
            'vectors': vectors, 'components': components,
            'explained_variance': variance[:2] / variance.sum()}
