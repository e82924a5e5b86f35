r"""Local chemical potentials: the energy a probe atom would contribute at
a point near a molecule, as in K. T. Schütt's thesis and
`"Quantum-chemical insights from deep tensor neural networks"
<https://www.nature.com/articles/ncomms13890>`_."""

import math

import torch
from torch import Tensor
from torch_geometric.data import Data

from pyg_schnet.graph import check_structure, radius_graph
from pyg_schnet.models import AtomisticModel, edge_vectors


@torch.no_grad()
def molecule_layers(model: AtomisticModel, data: Data) -> list:
    r"""The molecule's atom features before each pass and after the last,
    :math:`[\mathbf{x}^{(0)}, \ldots, \mathbf{x}^{(T)}]` (each
    :obj:`[N, F]`), computed exactly as :meth:`AtomisticModel.energy`
    does."""
    z, pos = data.z, data.pos.to(next(model.parameters()).dtype)
    edge_index = radius_graph(pos, model.cutoff)
    batch = torch.zeros(z.numel(), dtype=torch.long, device=z.device)
    d = edge_vectors(pos, edge_index, batch).norm(dim=-1)
    e = model.rbf(d)
    x = model.embedding(z)
    layers = [x]
    for block in model.interaction_blocks():
        x = x + block(x, edge_index, d, e)
        layers.append(x)
    return layers


def _readout(model: AtomisticModel, x: Tensor, z: Tensor) -> Tensor:
    y = model.readout.per_atom(x).squeeze(-1)
    if model.use_atomref:
        y = y.to(torch.float64) + model.atomref[z]
    return y


@torch.no_grad()
def atomic_energies(model: AtomisticModel, data: Data) -> Tensor:
    r"""The per-atom energies :math:`y_i` (eV) of a molecule, :obj:`[N]`,
    whose sum is the model's energy (with the per-element reference
    energies included when the model has them). The same numbers the
    molecule's atoms have when probes are near (:func:`local_potential`):
    probes receive messages but send none."""
    model.eval()
    _check_molecule(model, data)
    return _readout(model, molecule_layers(model, data)[-1], data.z)


def _check_molecule(model: AtomisticModel, data: Data) -> None:
    if data.get('pbc') is not None and bool(data.pbc.any()):
        raise ValueError('local potentials and atomic energies are defined '
                         'here for molecules; this structure is periodic')
    check_structure(data.z, data.pos, max_z=model.max_z)


@torch.no_grad()
def local_potential(model: AtomisticModel, data: Data, points: Tensor,
                    probe_z: int = 1, chunk: int = 4096,
                    return_atomic: bool = False):
    r"""The local chemical potential :math:`\Omega(\mathbf{r})` (eV) of a
    probe atom of element :obj:`probe_z` (default H) at each of
    :obj:`points` :obj:`[M, 3]` (Å) near the molecule :obj:`data`.

    A probe at :math:`\mathbf{r}` receives messages from the molecule's
    atoms within the cutoff and sends none, so the molecule's own
    representation is what it is without probes, and probes never see each
    other:

    .. math::
        \mathbf{x}_p^{(0)} = \mathbf{a}_{Z_p}, \qquad
        \mathbf{x}_p^{(t+1)} = \mathbf{x}_p^{(t)} + \mathbf{v}^{(t)}_p
        \big(\{\mathbf{x}_j^{(t)}, |\mathbf{r} - \mathbf{r}_j|\}_j\big),
        \qquad
        \Omega(\mathbf{r}) = y(\mathbf{x}_p^{(T)}),

    with the molecule's features :math:`\mathbf{x}_j^{(t)}` of
    :func:`molecule_layers`, the model's own interaction blocks, and
    :math:`y` the atom-wise readout (its per-atom energy, with the probe
    element's reference energy when the model has atom references). A
    probe farther than the cutoff from every atom gets the isolated-atom
    value :math:`y(\mathbf{a}_{Z_p})`.

    Args:
        model (AtomisticModel): A SchNet or DTNN model.
        data (Data): One molecule: :obj:`z`, :obj:`pos` (Å).
        points (torch.Tensor): Probe positions :obj:`[M, 3]` in Å.
        probe_z (int, optional): Element of the probe. (default: :obj:`1`)
        chunk (int, optional): Probes evaluated at once (bounds memory).
            (default: :obj:`4096`)

        return_atomic (bool, optional): Also return the molecule's own
            per-atom energies :obj:`[N]` from the same call (bit-identical
            to :func:`atomic_energies`). (default: :obj:`False`)

    Returns:
        :math:`\Omega` :obj:`[M]` in eV (and the per-atom energies).
    """
    model.eval()
    _check_molecule(model, data)
    if not 1 <= int(probe_z) <= model.max_z:
        raise ValueError(f'unknown probe element {probe_z} (allowed: '
                         f'1..{model.max_z})')
    dtype = next(model.parameters()).dtype
    points = torch.as_tensor(points, dtype=dtype, device=data.pos.device)
    if points.dim() != 2 or points.size(-1) != 3:
        raise ValueError(f"'points' must have shape [M, 3] (Å), got "
                         f'{list(points.shape)}')
    if not bool(torch.isfinite(points).all()):
        raise ValueError("'points' holds NaN or infinite positions")
    layers = molecule_layers(model, data)
    pos = data.pos.to(dtype)
    out = [_probe_chunk(model, layers, pos, points[k:k + chunk],
                        int(probe_z))
           for k in range(0, points.size(0), chunk)]
    omega = torch.cat(out) if out else points.new_zeros(0)
    if return_atomic:
        return omega, _readout(model, layers[-1], data.z)
    return omega


def _probe_chunk(model: AtomisticModel, layers: list, pos: Tensor,
                 points: Tensor, probe_z: int) -> Tensor:
    n, m = pos.size(0), points.size(0)
    dist = torch.cdist(points, pos)  # [M, N]
    probe, atom = (dist < model.cutoff).nonzero(as_tuple=True)
    # Directed edges atom j -> probe p; probes are nodes n..n+m-1.
    edge_index = torch.stack([atom, probe + n])
    d = dist[probe, atom]
    e = model.rbf(d)
    z = torch.full((m, ), probe_z, dtype=torch.long, device=pos.device)
    x_probe = model.embedding(z)
    for x_mol, block in zip(layers[:-1], model.interaction_blocks(),
                            strict=True):
        update = block(torch.cat([x_mol, x_probe]), edge_index, d, e)
        x_probe = x_probe + update[n:]
    return _readout(model, x_probe, z)


def geometric_median(pos: Tensor, iterations: int = 500) -> Tensor:
    r"""The point minimising :math:`\sum_i \|\mathbf{r} - \mathbf{r}_i\|`
    (Weiszfeld's algorithm), :obj:`[3]` (Å)."""
    r = pos.mean(dim=0)
    for _ in range(iterations):
        d = (pos - r).norm(dim=-1).clamp(min=1e-12)
        new = (pos / d.unsqueeze(-1)).sum(dim=0) / (1.0 / d).sum()
        if float((new - r).norm()) < 1e-10:
            return new
        r = new
    return r


def distance_sum_surface(data: Data, level: float = 3.7,
                         directions: int = 2000) -> Tensor:
    r"""Points of the level set :math:`\sum_i \|\mathbf{r} -
    \mathbf{r}_i\| = c` (Å), the surface the thesis draws :math:`\Omega` on
    (:math:`c = 3.7` Å), found along :obj:`directions` rays from the
    geometric median (the sum is convex, so each ray crosses the level
    once).

    For a molecule of several atoms the sum cannot be that small: its
    minimum, reached at the geometric median, already exceeds a few Å.

    Raises:
        ValueError: when the level set is empty, giving the smallest
            attainable value.
    """
    pos = data.pos.double()
    centre = geometric_median(pos)
    lowest = float((pos - centre).norm(dim=-1).sum())
    if not level > lowest:
        raise ValueError(
            f'the level set sum_i |r - r_i| = {level} Å is empty for this '
            f'molecule of {pos.size(0)} atoms: the smallest attainable '
            f'value is {lowest:.3f} Å (at its geometric median). Use a '
            f'larger level, inverse_distance_surface or vdw_surface')

    def f(r):
        return (r.unsqueeze(-2) - pos).norm(dim=-1).sum(dim=-1)
    return _rays(f, centre, level, directions, increasing=True,
                 scale=level / pos.size(0) + 1.0)


def inverse_distance_surface(data: Data, level: float,
                             directions: int = 2000) -> Tensor:
    r"""Points of the level set :math:`\sum_i \|\mathbf{r} -
    \mathbf{r}_i\|^{-1} = c` (:math:`c` in Å\ :sup:`-1`) that enclose
    the molecule: on each of :obj:`directions` rays from the centroid, the
    outermost crossing."""
    pos = data.pos.double()
    if not level > 0:
        raise ValueError(f"'level' must be positive (got {level} 1/Å)")

    def f(r):
        return (1.0 / (r.unsqueeze(-2) - pos).norm(dim=-1).clamp(
            min=1e-9)).sum(dim=-1)
    return _rays(f, pos.mean(dim=0), level, directions, increasing=False,
                 scale=pos.size(0) / level + 1.0)


def vdw_surface(data: Data, offset: float = 1.0, scale: float = 1.0,
                density: float = 2.0) -> Tensor:
    r"""Points at :obj:`offset` Å beyond the van-der-Waals surface: on the
    sphere of radius :math:`s R^{\mathrm{vdW}}_{Z_i} + \delta` around each
    atom (Bondi radii from ASE, :math:`s` = :obj:`scale`,
    :math:`\delta` = :obj:`offset`), the points not inside another atom's
    sphere — the solvent-accessible-surface construction. :obj:`density`
    points per Å².

    This surface exists for every molecule and follows its shape; at
    :math:`\delta \approx 1` Å it passes where a bonding partner or a
    hydrogen-bond donor would sit."""
    from ase.data.vdw_alvarez import vdw_radii
    for name, value in (('offset', offset), ('scale', scale),
                        ('density', density)):
        if not (isinstance(value, (int, float)) and math.isfinite(value)):
            raise ValueError(f"'{name}' must be a finite number (got "
                             f'{value!r})')
    if not (scale > 0 and density > 0):
        raise ValueError(f"'scale' and 'density' must be positive (got "
                         f'{scale} and {density} points per Å²)')
    pos = data.pos.double()
    radii = torch.tensor([vdw_radii[int(z)] for z in data.z],
                         dtype=torch.float64) * scale + offset
    if not bool((radii > 0).all()):
        raise ValueError(f'offset {offset} Å puts the surface inside the '
                         f'atoms (a sphere radius is not positive); use an '
                         f'offset above {-float(radii.min() - offset):.2f} Å')
    _check_points(int((4 * math.pi * radii**2 * density).sum()),
                  pos.size(0), 'the van-der-Waals surface (lower density or '
                  'offset)')
    points = []
    for i in range(pos.size(0)):
        count = max(int(4 * torch.pi * radii[i]**2 * density), 12)
        sphere = pos[i] + radii[i] * _fibonacci_sphere(count)
        inside = ((sphere.unsqueeze(1) - pos).norm(dim=-1) <
                  radii - 1e-9).any(dim=1)
        points.append(sphere[~inside])
    return torch.cat(points)


#: Most probe points (or ray samples) a surface may hold.
MAX_POINTS = 50_000_000


def _check_points(count: int, atoms: int, what: str) -> None:
    r"""Refuses a surface of more than :data:`MAX_POINTS` points (or
    whose distance table would not fit in memory) before it is built."""
    from pyg_schnet.models.memory import available_memory
    need = 8 * 3 * count * max(atoms, 1) * 2
    have = available_memory('cpu')
    if count > MAX_POINTS or (have is not None and need > have):
        raise MemoryError(f'{what}: {count:,} points would need about '
                          f'{need / 1e9:.1f} GB (limit {MAX_POINTS:,} '
                          f'points' + (f', {have / 1e9:.1f} GB available'
                                       if have is not None else '') + ')')


def _fibonacci_sphere(count: int) -> Tensor:
    k = torch.arange(count, dtype=torch.float64) + 0.5
    polar = torch.arccos(1 - 2 * k / count)
    azimuth = torch.pi * (1 + 5**0.5) * k
    return torch.stack([torch.cos(azimuth) * torch.sin(polar),
                        torch.sin(azimuth) * torch.sin(polar),
                        torch.cos(polar)], dim=-1)


def _rays(f, centre: Tensor, level: float, directions: int,
          increasing: bool, scale: float, grid: int = 400,
          steps: int = 50) -> Tensor:
    r"""The outermost point where :math:`f` crosses :obj:`level` on each of
    :obj:`directions` rays from :obj:`centre`: the bracket grows until every
    ray is past the level, a grid of :obj:`grid` points locates the last
    crossing, bisection refines it. Rays without a crossing are
    dropped."""
    if isinstance(directions, bool) or not isinstance(directions, int) or \
            directions < 1:
        raise ValueError(f"'directions' must be a positive integer (got "
                         f'{directions!r})')
    if not (isinstance(level, (int, float)) and math.isfinite(level)):
        raise ValueError(f"'level' must be a finite number (got {level!r})")
    _check_points(directions * (grid + 1), centre.numel(),
                  f'{directions} rays (use fewer directions)')
    u = _fibonacci_sphere(directions)

    def beyond(t):
        value = f(centre + t.unsqueeze(-1) * u)
        return value > level if increasing else value < level
    high = torch.full((directions, ), scale, dtype=torch.float64)
    for _ in range(60):
        done = beyond(high)
        if bool(done.all()):
            break
        high = torch.where(done, high, 2 * high)
    fraction = torch.linspace(0.0, 1.0, grid + 1, dtype=torch.float64)
    t = high.unsqueeze(-1) * fraction  # [D, G + 1]
    value = f(centre + t.unsqueeze(-1) * u.unsqueeze(1))
    past = value > level if increasing else value < level
    inside = (~past).double() * torch.arange(grid + 1, dtype=torch.float64)
    last = inside.argmax(dim=1)  # the last grid point not past the level
    found = ~past.gather(1, last.unsqueeze(-1)).squeeze(-1)
    low = t.gather(1, last.unsqueeze(-1)).squeeze(-1)
    high = t.gather(1, (last + 1).clamp(max=grid).unsqueeze(-1)).squeeze(-1)
    for _ in range(steps):
        mid = 0.5 * (low + high)
        over = beyond(mid)
        high = torch.where(over, mid, high)
        low = torch.where(over, low, mid)
    points = centre + (0.5 * (low + high)).unsqueeze(-1) * u
    return points[found]
