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


#: Period (row) of each element, by atomic number (1-7).
PERIODS = {z: (1 if z <= 2 else 2 if z <= 10 else 3 if z <= 18 else
               4 if z <= 36 else 5 if z <= 54 else 6 if z <= 86 else 7)
           for z in range(1, 119)}

#: The main groups of the periodic table.
MAIN_GROUPS = (1, 2, 13, 14, 15, 16, 17)


def _spearman(x, y) -> float:
    r"""Spearman's rank correlation of two sequences (average ranks for
    ties)."""
    from scipy.stats import spearmanr
    value = spearmanr(x, y).statistic
    return float(value) if value == value else 0.0


def embedding_scores(model: AtomisticModel,
                     elements: Sequence[Union[int, str]],
                     permutations: int = 1000, seed: int = 0,
                     directions: int = 5) -> Dict[str, object]:
    r"""Two measurements of whether the element embeddings
    :math:`\mathbf{x}^0_Z` order elements as the periodic table does
    (the thesis' Abb. 5 claim), instead of eyeballing a picture:

    * :obj:`same_group`: the fraction of elements whose nearest neighbour
      in the full embedding space (cosine similarity) is in the same
      group, with the same score for :obj:`permutations` random
      permutations of the group labels (:obj:`null_mean`,
      :obj:`null_std`, and :obj:`p_value`, the share of permutations
      scoring at least as high);
    * :obj:`period_correlation`: for each group with three or more of the
      elements (:obj:`main_group` says whether it is one of
      :data:`MAIN_GROUPS`), Spearman's correlation of the first principal
      component with the period, and the largest absolute correlation over
      the first :obj:`directions` principal components (:obj:`best`), with
      the mean of that largest absolute correlation when the periods are
      shuffled within the group (:obj:`best_by_chance`: with three
      elements a direction of :math:`|\rho| = 1` is often found by
      chance).

    Returns:
        A dict of these, with :obj:`symbols`, :obj:`groups`, :obj:`periods`.
    """
    result = element_embeddings(model, elements)
    vectors = result['vectors']
    groups = torch.tensor(result['groups'])
    numbers = result['numbers']
    unit = vectors / vectors.norm(dim=1, keepdim=True).clamp(min=1e-12)
    similarity = unit @ unit.T
    similarity.fill_diagonal_(-float('inf'))
    nearest = similarity.argmax(dim=1)

    def score(labels):
        return float((labels[nearest] == labels).double().mean())
    observed = score(groups)
    gen = torch.Generator().manual_seed(seed)
    null = torch.tensor([score(groups[torch.randperm(len(groups),
                                                      generator=gen)])
                         for _ in range(permutations)], dtype=torch.float64)
    centred = vectors - vectors.mean(dim=0)
    _, _, vh = torch.linalg.svd(centred, full_matrices=False)
    components = centred @ vh[:directions].T
    periods = [PERIODS[z] for z in numbers]
    correlation = {}
    for group in sorted(set(result['groups'])):
        members = [k for k, g in enumerate(result['groups']) if g == group]
        if len(members) < 3 or group == 0:
            continue
        rows = [periods[k] for k in members]
        values = [_spearman(components[members, d].tolist(), rows)
                  for d in range(components.size(1))]
        # What the best of the directions reaches by chance: the same
        # search with the periods shuffled within the group.
        chance = []
        for _ in range(min(permutations, 200)):
            order = torch.randperm(len(rows), generator=gen).tolist()
            shuffled = [rows[i] for i in order]
            chance.append(max(abs(_spearman(
                components[members, d].tolist(), shuffled))
                for d in range(components.size(1))))
        correlation[group] = {
            'best_by_chance': float(sum(chance) / len(chance)),
            'main_group': group in MAIN_GROUPS,
            'elements': [result['symbols'][k] for k in members],
            'pc1': values[0],
            'best': max(values, key=abs),
            'best_component': 1 + max(range(len(values)),
                                      key=lambda d: abs(values[d]))}
    return {'symbols': result['symbols'], 'groups': result['groups'],
            'periods': periods,
            'same_group': observed,
            'null_mean': float(null.mean()), 'null_std': float(null.std()),
            'p_value': float((null >= observed).double().mean()),
            'permutations': permutations,
            'nearest': [result['symbols'][int(k)] for k in nearest],
            'period_correlation': correlation}
