"""The point group of a molecule, from its symmetry operations found as the
permutations of its atoms that preserve every interatomic distance.

For atoms in general position every such permutation is one orthogonal
map (found by a least-squares fit); proper and improper rotations are
told apart by its determinant, and the group is named from how many
operations of each kind it has (the groups a fullerene cage can take:
Ih, I, Th, Td, T, Oh, D5d, D5h, D3d, D3h, D2h, D2d, D2, C2h, C2v, C3v,
C2, Cs, Ci, C1, ...).
"""
from typing import Dict, List

import numpy as np


def symmetry_operations(positions: np.ndarray, numbers: np.ndarray,
                        tol: float = 1e-3) -> List[np.ndarray]:
    r"""The orthogonal 3x3 matrices :math:`R` with :math:`R(\mathbf{r}_i -
    \mathbf{c}) = \mathbf{r}_{\pi(i)} - \mathbf{c}` for a permutation
    :math:`\pi` of like atoms (:math:`\mathbf{c}` the centroid), within
    :obj:`tol` Å."""
    x = positions - positions.mean(axis=0)
    n = len(x)
    dist = np.linalg.norm(x[:, None] - x[None], axis=-1)
    radius = np.linalg.norm(x, axis=1)
    # Atoms that span the molecule's space (three, or two for a planar
    # molecule) fix an orthogonal map (up to the plane's mirror).
    base: List[int] = []
    for k in range(n):
        trial = base + [k]
        if np.linalg.matrix_rank(x[trial], tol=1e-3) == len(trial):
            base = trial
        if len(base) == 3:
            break
    if len(base) < 2:
        raise ValueError('linear molecules have infinite point groups')
    ops = []

    def accept(R: np.ndarray) -> None:
        mapped = x @ R.T
        match = np.linalg.norm(mapped[:, None] - x[None], axis=-1)
        perm = match.argmin(axis=1)
        if np.all(match[np.arange(n), perm] < tol) and \
                len(set(perm.tolist())) == n and \
                np.all(numbers[perm] == numbers) and \
                not any(np.allclose(R, other, atol=1e-6) for other in ops):
            ops.append(R)

    def extend(image: List[int]):
        if len(image) == len(base):
            A, B = x[base], x[image]
            u, _, vt = np.linalg.svd(B.T @ A)
            R = u @ vt  # the best orthogonal map A -> B
            candidates = [R]
            if len(base) == 2:  # a plane: R and R times its mirror
                normal = np.cross(A[0], A[1])
                normal /= np.linalg.norm(normal)
                mirror = np.eye(3) - 2 * np.outer(normal, normal)
                candidates.append(R @ mirror)
            for candidate in candidates:
                accept(candidate)
            return
        k = base[len(image)]
        for j in range(n):
            if numbers[j] != numbers[k] or j in image or \
                    abs(radius[j] - radius[k]) > tol:
                continue
            if all(abs(dist[j, image[m]] - dist[k, base[m]]) < tol
                   for m in range(len(image))):
                extend(image + [j])

    extend([])
    return ops


def describe_operations(ops: List[np.ndarray]) -> Dict[str, int]:
    r"""Counts of the operation classes: identity, inversion, mirrors,
    proper rotations by their order :math:`C_n`, improper ones
    :math:`S_n`."""
    counts: Dict[str, int] = {}
    for R in ops:
        det = np.linalg.det(R)
        proper = R if det > 0 else -R
        angle = np.arccos(np.clip((np.trace(proper) - 1) / 2, -1, 1))
        if det > 0:
            if angle < 1e-3:
                key = 'E'
            else:
                key = f'C{int(round(2 * np.pi / angle))}'
        else:
            if angle < 1e-3:
                key = 'i'
            elif abs(angle - np.pi) < 1e-3:
                key = 'sigma'
            else:
                # -R(phi) is a rotation-reflection S_n with 2 pi / n = pi -
                # phi (mod 2 pi).
                theta = np.pi - angle
                key = f'S{int(round(2 * np.pi / theta))}'
        counts[key] = counts.get(key, 0) + 1
    return counts


def point_group(positions: np.ndarray, numbers: np.ndarray,
                tol: float = 1e-3) -> str:
    r"""The Schoenflies symbol of the molecule's point group (within
    :obj:`tol` Å), from its operations: the order, the proper rotations'
    highest order :math:`n`, inversion and the number of mirror
    planes."""
    ops = symmetry_operations(positions, numbers, tol)
    c = describe_operations(ops)
    order = len(ops)
    proper = sum(v for k, v in c.items() if k == 'E' or k.startswith('C'))
    inversion = c.get('i', 0) == 1
    mirrors = c.get('sigma', 0)
    n = max([int(k[1:]) for k in c if k.startswith('C')] or [1])
    if c.get('C3', 0) >= 8:  # four or more 3-fold axes: a cubic group
        cubic = {(120, True): 'Ih', (60, False): 'I', (48, True): 'Oh',
                 (24, True): 'Th', (24, False): 'Td' if mirrors else 'O',
                 (12, False): 'T'}
        return cubic.get((order, inversion), f'order {order}')
    if proper == order:
        return f'C{n}' if order == n else f'D{n}'
    if proper == n:  # order 2n
        if n == 1:
            return 'Cs' if mirrors == 1 else 'Ci'
        if mirrors == n:
            return f'C{n}v'
        if mirrors == 1:
            return f'C{n}h'
        return f'S{2 * n}'
    if proper == 2 * n:  # order 4n
        if mirrors == n + 1:
            return f'D{n}h'
        if mirrors == n:
            return f'D{n}d'
    return f'order {order}'
