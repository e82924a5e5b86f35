"""Shared pieces of the benchmarks: the structures, the peer models built to
the same size as pyg_schnet's SchNet, and interleaved timing.

Peers (same F = 128, T = 6, 50 Gaussians, 5 Å cutoff, forces by autograd):
* ``torch_geometric.nn.models.SchNet`` (PyG's own), given the same
  ``torch_cluster`` graph for molecules (no neighbour cap; PyG 2.8 needs
  pyg-lib to build one itself) and vesin's periodic graph for crystals;
* TorchMD-Net's ``graph-network`` (PyPI ``torchmd-net``, its SchNet-style
  model), which builds its own neighbour list (molecules, rectangular
  boxes), when installed.
"""
import statistics
import time
from typing import Callable, Dict, List

import numpy as np
import torch_cluster
from ase import Atoms
from ase.build import bulk, molecule

SIZE = dict(hidden_channels=128, num_filters=128, num_interactions=6,
            num_gaussians=50, cutoff=5.0)


# -- structures ---------------------------------------------------------------

def ethanol() -> Atoms:
    return molecule('CH3CH2OH')


def crystal(kind: str, atoms: int, seed: int = 0) -> Atoms:
    r"""A rattled cubic supercell of fcc Cu (a = 3.61 Å) or diamond Si
    (a = 5.43 Å) with about :obj:`atoms` atoms."""
    unit = bulk('Cu', 'fcc', a=3.61, cubic=True) if kind == 'Cu' else \
        bulk('Si', 'diamond', a=5.43, cubic=True)
    k = max(1, round((atoms / len(unit))**(1 / 3)))
    out = unit * (k, k, k)
    out.rattle(0.05, seed=seed)
    return out


def water_cluster(atoms: int, seed: int = 0) -> Atoms:
    r"""A molecule of about :obj:`atoms` atoms: water molecules on a
    jittered cubic grid at liquid density (3.1 Å apart), no periodicity."""
    rng = np.random.default_rng(seed)
    n = max(1, round((atoms / 3)**(1 / 3)))
    base = molecule('H2O')
    out = Atoms()
    for x in range(n):
        for y in range(n):
            for z in range(n):
                w = base.copy()
                w.rotate(rng.uniform(0, 360), rng.normal(size=3))
                w.translate(3.1 * np.array([x, y, z]) +
                            rng.normal(0, 0.1, 3))
                out += w
    return out


# -- peers --------------------------------------------------------------------

def pyg_schnet_model(graph: Callable):
    from torch_geometric.nn.models import SchNet as PyGSchNet
    return PyGSchNet(interaction_graph=graph, **SIZE)


def molecule_graph(cutoff: float = 5.0) -> Callable:
    r"""PyG SchNet's ``interaction_graph``: the uncapped torch_cluster
    radius graph and its distances."""
    def graph(pos, batch):
        edge_index = torch_cluster.radius_graph(
            pos, r=cutoff, batch=batch, max_num_neighbors=100_000)
        return edge_index, (pos[edge_index[0]] - pos[edge_index[1]]).norm(
            dim=-1)
    return graph


def fixed_periodic_graph(edge_index, vectors_of: Callable) -> Callable:
    r"""PyG SchNet's ``interaction_graph`` for a crystal: a prebuilt
    periodic edge list, distances from the positions given (so that
    autograd gives forces)."""
    def graph(pos, batch):
        return edge_index, vectors_of(pos).norm(dim=-1)
    return graph


def torchmd_gn_model(box=None):
    r"""TorchMD-Net's graph-network at SchNet's size, or :obj:`None` when
    torchmd-net is not installed."""
    try:
        from torchmdnet.models.model import create_model
    except ImportError:
        return None
    args = dict(model='graph-network', precision=32, embedding_dimension=128,
                num_layers=6, num_rbf=50, rbf_type='gauss',
                trainable_rbf=False, activation='ssp',
                neighbor_embedding=False, cutoff_lower=0.0,
                cutoff_upper=5.0, max_z=100, max_num_neighbors=256,
                aggr='add', derivative=True, atom_filter=-1,
                prior_model=None, output_model='Scalar', reduce_op='add',
                box_vecs=None if box is None else box.tolist(),
                static_shapes=False, equivariance_invariance_group='O(3)',
                remove_ref_energy=False)
    return create_model(args)


# -- timing -------------------------------------------------------------------

def interleaved(calls: Dict[str, Callable[[], None]], repeat: int,
                warmup: int = 2) -> Dict[str, List[float]]:
    r"""Seconds per call of each function, called in turn (rotating order)
    :obj:`repeat` times after :obj:`warmup` calls each, so that machine
    noise hits all alike."""
    names = list(calls)
    for _ in range(warmup):
        for name in names:
            calls[name]()
    times: Dict[str, List[float]] = {name: [] for name in names}
    for r in range(repeat):
        for name in names[r % len(names):] + names[:r % len(names)]:
            start = time.perf_counter()
            calls[name]()
            times[name].append(time.perf_counter() - start)
    return times


def describe(times: List[float], scale: float = 1e3, unit: str = 'ms',
             per: float = 1.0) -> str:
    values = [t * scale / per for t in times]
    return (f'{statistics.median(values):.3g} {unit} '
            f'[{min(values):.3g}, {max(values):.3g}]')


def ratio(times: Dict[str, List[float]], peer: str, ours: str) -> str:
    r"""Median of the peer over median of ours, with the range of the
    per-round ratios (>1: ours is faster)."""
    pairs = [p / o for p, o in zip(times[peer], times[ours], strict=True)]
    median = statistics.median(times[peer]) / statistics.median(times[ours])
    return f'{median:.2f}x [{min(pairs):.2f}, {max(pairs):.2f}]'


def machine() -> str:
    from pyg_schnet.train.hardware import describe_hardware
    return describe_hardware()
