"""Pictures of the interpretability results (matplotlib PNGs)."""
import os
import textwrap
from typing import Dict, Optional

import numpy as np
from torch import Tensor
from torch_geometric.data import Data

from pyg_schnet.io import atomic_path

#: A light, slightly transparent box behind labels drawn over atoms.
_LABEL_BOX = dict(boxstyle='round,pad=0.15', facecolor='white', alpha=0.75,
                  edgecolor='none')


def _pyplot():
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    return plt


def _save(fig, path: os.PathLike) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=130, format='png')


def _atoms(ax, data: Data, size: float = 500.0, labels: bool = True,
           colors=None) -> None:
    r"""Atoms as spheres in CPK colours (or :obj:`colors`), bonds as lines
    (closer than 1.2 times the sum of covalent radii)."""
    from ase.data import covalent_radii
    from ase.data.colors import cpk_colors
    pos = data.pos.detach().double().cpu().numpy()
    z = data.z.cpu().numpy()
    radii = covalent_radii[z]
    for i in range(len(z)):
        for j in range(i + 1, len(z)):
            if np.linalg.norm(pos[i] - pos[j]) < 1.2 * (radii[i] + radii[j]):
                ax.plot(*zip(pos[i], pos[j], strict=True), color='0.3',
                        lw=2, zorder=1)
    ax.scatter(*pos.T, s=size * radii / radii.max(), depthshade=False,
               c=cpk_colors[z] if colors is None else colors,
               edgecolors='k', zorder=2)
    if labels:
        from ase.data import chemical_symbols
        for i, p in enumerate(pos):
            ax.text(*p, f'  {chemical_symbols[z[i]]}{i}', fontsize=7,
                    bbox=_LABEL_BOX, zorder=5)


def _equal_axes(ax, points: np.ndarray) -> None:
    centre = points.mean(axis=0)
    half = (points.max(axis=0) - points.min(axis=0)).max() / 2 + 0.5
    for setter, c in zip((ax.set_xlim, ax.set_ylim, ax.set_zlim), centre,
                         strict=True):
        setter(c - half, c + half)
    ax.set_xlabel('x (Å)')
    ax.set_ylabel('y (Å)')
    ax.set_zlabel('z (Å)')


def plot_potential(data: Data, points: Tensor, omega: Tensor,
                   path: os.PathLike, title: str = '',
                   probe: str = 'H') -> None:
    r"""The surface points coloured by :math:`\Omega` (eV, colour bar), the
    atoms as spheres in CPK colours, from two opposite sides; each view
    shows the half of the surface behind the molecule, so the atoms in
    front stay visible."""
    import matplotlib.colors as mcolors
    plt = _pyplot()
    pts = points.detach().double().cpu().numpy()
    values = omega.detach().double().cpu().numpy()
    centre = data.pos.detach().double().cpu().numpy().mean(axis=0)
    norm = mcolors.Normalize(values.min(), values.max())
    fig = plt.figure(figsize=(11, 5))
    for k, (elev, azim) in enumerate(((25, 30), (25, 210))):
        ax = fig.add_subplot(1, 2, k + 1, projection='3d')
        e, a = np.radians(elev), np.radians(azim)
        towards_viewer = np.array([np.cos(e) * np.cos(a),
                                   np.cos(e) * np.sin(a), np.sin(e)])
        back = (pts - centre) @ towards_viewer < 0
        sc = ax.scatter(*pts[back].T, c=values[back], cmap='coolwarm_r',
                        norm=norm, s=8, depthshade=False)
        _atoms(ax, data, labels=True)
        _equal_axes(ax, pts)
        ax.view_init(elev=elev, azim=azim)
        ax.set_title('front' if k == 0 else 'back', fontsize=9)
    fig.colorbar(sc, ax=fig.axes, shrink=0.7,
                 label=f'local potential Ω of a {probe} probe (eV)')
    fig.suptitle(title)
    _save(fig, path)
    plt.close(fig)


def plot_embeddings(result: Dict[str, object], path: os.PathLike,
                    title: str = '') -> None:
    r"""The elements' first two principal components, labelled by symbol
    and coloured by periodic-table group."""
    plt = _pyplot()
    comps = result['components'].numpy()
    groups = np.asarray(result['groups'])
    variance = result['explained_variance'].numpy()
    fig, ax = plt.subplots(figsize=(6, 5))
    cmap = plt.get_cmap('tab20')
    for g in sorted(set(groups.tolist())):
        mask = groups == g
        ax.scatter(comps[mask, 0], comps[mask, 1], s=120, color=cmap(g % 20),
                   label=f'group {g}', edgecolors='k')
    for (x, y), symbol in zip(comps, result['symbols'], strict=True):
        ax.annotate(symbol, (x, y), textcoords='offset points',
                    xytext=(6, 6), fontsize=11)
    ax.set_xlabel(f'principal component 1 ({100 * variance[0]:.0f} % of '
                  f'the variance)')
    ax.set_ylabel(f'principal component 2 ({100 * variance[1]:.0f} %)')
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    ax.set_title(title)
    fig.tight_layout()
    _save(fig, path)
    plt.close(fig)


def plot_atomic_energies(data: Data, energies: Tensor, path: os.PathLike,
                         title: str = '',
                         reference: Optional[Tensor] = None) -> None:
    r"""The molecule with each atom coloured by its energy (eV); with
    :obj:`reference` (per-element reference energies indexed by atomic
    number), by its energy minus its element's reference, which the
    colours would otherwise hide."""
    plt = _pyplot()
    values = energies.detach().double().cpu().numpy()
    label = 'atomic energy (eV)'
    if reference is not None:
        values = values - reference[data.z].double().cpu().numpy()
        label = 'atomic energy - free-atom reference (eV)'
    fig = plt.figure(figsize=(7, 5.5))
    ax = fig.add_subplot(projection='3d')
    import matplotlib.colors as mcolors
    norm = mcolors.Normalize(values.min(), values.max())
    cmap = plt.get_cmap('viridis')
    _atoms(ax, data, colors=cmap(norm(values)), labels=False)
    pos = data.pos.detach().double().cpu().numpy()
    from ase.data import chemical_symbols
    for p, z, v in zip(pos, data.z.tolist(), values, strict=True):
        # Beside the disc, on a light box: readable over dark colours.
        ax.text(*p, f'  {chemical_symbols[z]} {v:.2f}', fontsize=8,
                bbox=_LABEL_BOX, zorder=5)
    _equal_axes(ax, pos)
    fig.colorbar(plt.cm.ScalarMappable(norm=norm, cmap=cmap), ax=ax,
                 shrink=0.7, pad=0.12, label=label)
    fig.suptitle(textwrap.fill(title, 70, break_on_hyphens=False),
                 fontsize=10)
    _save(fig, path)
    plt.close(fig)
