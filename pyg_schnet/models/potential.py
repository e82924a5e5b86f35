"""The energy → forces/stress logic shared by every model."""
import contextlib
import functools
import inspect
import math
import warnings
from typing import Any, Dict, List, Optional, Tuple, Union

import torch
from ase.data import chemical_symbols
from torch import Tensor
from torch_geometric.data import Data

from pyg_schnet.graph import (
    MAX_Z,
    MIN_DISTANCE,
    build_graph,
    canonical_mask,
    check_cell,
    check_distances,
    check_structure,
    half_pairs,
)
from pyg_schnet.nn import Atomwise
from pyg_schnet.nn.fused import frozen_weights
from pyg_schnet.nn.properties import PROPERTY_HEADS

ModelOutput = Union[Tensor, Tuple[Tensor, ...]]

#: Constructor arguments kept in the state dict rather than the config.
_STATE_ARGUMENTS = ('atomref', 'mean', 'std')


def check_arguments(**arguments: Tuple[Any, ...]) -> None:
    r"""Checks constructor arguments given as :obj:`name=(value, type)` or
    :obj:`name=(value, int, minimum)`: a bool where a bool is expected, an
    integer (not a bool) of at least :obj:`minimum` where an integer is.

    Raises:
        ValueError: naming the argument, its value and what was expected.
    """
    for name, (value, kind, *minimum) in arguments.items():
        if kind is bool:
            if not isinstance(value, bool):
                raise ValueError(f"'{name}' must be True or False (got "
                                 f"{value!r})")
        elif kind is int:
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"'{name}' must be an integer (got "
                                 f"{value!r})")
            if minimum and value < minimum[0]:
                raise ValueError(f"'{name}' must be at least {minimum[0]} "
                                 f"(got {value})")


def unseen_elements_message(unseen: List[int], trained: List[int]) -> str:
    r"""The warning for structures with elements a model was not trained
    on: its predictions for them are extrapolations."""
    def names(numbers: List[int]) -> str:
        return ', '.join(chemical_symbols[z] if 0 < z < len(chemical_symbols)
                         else str(z) for z in numbers)
    return (f'elements {names(unseen)} were not in the training data '
            f'(trained on {names(trained)}): predictions for them are '
            f'extrapolations, not to be trusted')


def _json_like(value: Any) -> bool:
    if value is None or isinstance(value, (bool, int, float, str)):
        return True
    if isinstance(value, (list, tuple)):
        return all(_json_like(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _json_like(v)
                   for k, v in value.items())
    return False


def edge_vectors(pos: Tensor, edge_index: Tensor, batch: Tensor,
                 cell: Optional[Tensor] = None,
                 cell_offsets: Optional[Tensor] = None) -> Tensor:
    r"""Edge vectors :math:`\mathbf{r}_{ij} = \mathbf{p}_j - \mathbf{p}_i +
    \mathbf{S}_{ij}\mathbf{C}_{b(i)}` in Å, shape :obj:`[E, 3]`."""
    j, i = edge_index[0], edge_index[1]
    vec = pos[j] - pos[i]
    if cell is not None and cell_offsets is not None:
        vec = vec + torch.einsum('ek,ekl->el', cell_offsets.to(pos.dtype),
                                 cell[batch[i]])
    return vec


class AtomisticModel(torch.nn.Module):
    r"""Base class of :class:`SchNet` and :class:`DTNN`: an energy
    :math:`E = \sum_i y_i` from atom-wise contributions, with forces
    :math:`\mathbf{F} = -\partial E / \partial \mathbf{r}` and stress
    :math:`\boldsymbol{\sigma} = \frac{1}{V}\,\partial E / \partial
    \boldsymbol{\varepsilon}` by automatic differentiation.

    Subclasses define an element :obj:`embedding`, a distance expansion
    :obj:`rbf`, the :obj:`interactions` (applied as residual updates by
    :meth:`representation`) and an :class:`~pyg_schnet.nn.Atomwise` readout
    :obj:`readout`.

    The per-atom reference energies :obj:`atomref` (eV, indexed by atomic
    number) are a float64 buffer: when they are in use, per-atom
    contributions are converted to float64 before the references are added
    and summed, and energies are returned in float64 (QM9 total energies of
    ~1e4 eV would lose meV in float32). The buffer stays float64 whatever
    :meth:`to` does to the weights.
    """
    #: Two atoms closer than this (Å) raise a :class:`ValueError`.
    min_distance: float = MIN_DISTANCE

    embedding: torch.nn.Embedding
    rbf: torch.nn.Module
    interactions: torch.nn.ModuleList
    readout: Atomwise

    def __init_subclass__(cls, **kwargs):
        # Every model records the arguments it was built with, so that
        # `config` (what save_model stores) can never miss a new argument:
        # the wrapper binds the call to the signature of `__init__`.
        super().__init_subclass__(**kwargs)
        init = cls.__dict__.get('__init__')
        if init is None:
            return
        signature = inspect.signature(init)

        @functools.wraps(init)
        def recording_init(self, *args, **kw):
            init(self, *args, **kw)
            # Recorded by the most derived __init__ that runs (a subclass
            # without its own __init__ is recorded here).
            if type(self).__init__ is recording_init:
                bound = signature.bind(self, *args, **kw)
                bound.apply_defaults()
                config = {}
                for name, param in signature.parameters.items():
                    if name == 'self' or name in _STATE_ARGUMENTS or \
                            param.kind in (param.VAR_POSITIONAL,
                                           param.VAR_KEYWORD):
                        continue
                    value = bound.arguments[name]
                    if not _json_like(value):
                        raise ValueError(
                            f"{cls.__name__}: argument '{name}' must be a "
                            f'number, string, bool or None to be saved '
                            f'with the model (got {type(value).__name__})')
                    config[name] = value
                self._config = config

        cls.__init__ = recording_init

    def __init__(self, cutoff: float, max_z: int = MAX_Z,
                 atomref: Optional[Tensor] = None):
        super().__init__()
        if isinstance(cutoff, bool) or \
                not isinstance(cutoff, (int, float)) or \
                not (math.isfinite(cutoff) and cutoff > 0):
            raise ValueError(f"'cutoff' must be a positive, finite number "
                             f"of Å (got {cutoff!r})")
        check_arguments(max_z=(max_z, int, 1))
        self.cutoff = float(cutoff)
        self.max_z = int(max_z)
        self.use_atomref = atomref is not None
        #: Atomic numbers seen in training (set by the trainer, saved with
        #: the model); others trigger a warning. None: not recorded.
        self.trained_elements: Optional[List[int]] = None
        self.register_buffer(
            'atomref', torch.zeros(self.max_z + 1, dtype=torch.float64))
        if atomref is not None:
            self.set_atomref(atomref)
        self._config: Dict[str, Any] = {}

    # -- configuration ----------------------------------------------------
    @property
    def config(self) -> Dict[str, Any]:
        r"""The constructor arguments (JSON-serialisable) that rebuild this
        model, recorded from the call to :obj:`__init__` (so every argument
        is in it); the weights, :obj:`atomref`, mean and std are in
        :meth:`state_dict`."""
        return {**self._config, 'use_atomref': self.use_atomref}

    @classmethod
    def from_config(cls, config: Dict[str, Any]) -> 'AtomisticModel':
        r"""Rebuilds a model from :attr:`config` (weights not loaded)."""
        config = dict(config)
        use_atomref = config.pop('use_atomref', False)
        known = inspect.signature(cls.__init__).parameters
        unknown = sorted(set(config) - set(known))
        if unknown:
            raise ValueError(f'{cls.__name__} has no arguments {unknown} '
                             f'(saved by another version of pyg_schnet?)')
        model = cls(**config)
        model.use_atomref = bool(use_atomref)
        return model

    def set_atomref(self, atomref: Tensor) -> None:
        r"""Sets per-element reference energies (eV), a tensor of
        :obj:`max_z + 1` values indexed by atomic number."""
        atomref = torch.as_tensor(atomref, dtype=torch.float64).flatten()
        if atomref.numel() != self.max_z + 1:
            raise ValueError(f"'atomref' must have {self.max_z + 1} entries "
                             f"(indexed by atomic number 0..{self.max_z}), "
                             f"got {atomref.numel()}")
        if not bool(torch.isfinite(atomref).all()):
            raise ValueError("'atomref' holds non-finite values")
        readout = self._modules.get('readout')
        if readout is not None and readout.aggr == 'mean':
            raise ValueError('atom references need an extensive (sum) '
                             'readout')
        self.atomref.copy_(atomref)
        self.use_atomref = True

    def _warn_unseen_elements(self, z: Tensor) -> None:
        if self.trained_elements is None:
            return
        unseen = sorted(set(torch.unique(z).tolist()) -
                        set(self.trained_elements))
        if unseen:
            warnings.warn(unseen_elements_message(unseen,
                                                  self.trained_elements),
                          stacklevel=3)

    def _add_heads(self, properties: Optional[List[str]],
                   channels: int) -> None:
        r"""Adds the property heads named in :obj:`properties` (keys of
        :data:`~pyg_schnet.nn.properties.PROPERTY_HEADS`) on atom features
        of size :obj:`channels`."""
        if properties is None:
            properties = []
        if isinstance(properties, str) or not isinstance(
                properties, (list, tuple)) or \
                not all(isinstance(p, str) for p in properties):
            raise ValueError(f"'properties' must be a list of names from "
                             f"{sorted(PROPERTY_HEADS)} (got "
                             f"{properties!r})")
        unknown = sorted(set(properties) - set(PROPERTY_HEADS))
        if unknown:
            raise ValueError(f'unknown properties {unknown}: the heads are '
                             f'{sorted(PROPERTY_HEADS)}')
        if len(set(properties)) != len(properties):
            raise ValueError(f"'properties' names a head twice: "
                             f'{list(properties)}')
        self.heads = torch.nn.ModuleDict({
            name: PROPERTY_HEADS[name](channels, max(channels // 2, 1))
            for name in properties})

    def set_standardization(self, mean: float, std: float) -> None:
        r"""Sets the per-atom shift :math:`\mu` and scale :math:`\sigma` of
        the readout, in the target's unit (eV for energies)."""
        if not std > 0:
            raise ValueError(f"'std' must be positive (got {std})")
        self.readout.mean.fill_(float(mean))
        self.readout.std.fill_(float(std))

    def _apply(self, fn, recurse=True):
        # Keep the reference energies in float64 through .float()/.half().
        atomref = self.atomref
        super()._apply(fn, recurse)
        self.atomref = atomref.to(device=self.atomref.device,
                                  dtype=torch.float64)
        return self

    def reset_parameters(self):
        self.embedding.reset_parameters()
        for interaction in self.interactions:
            interaction.reset_parameters()
        self.readout.reset_parameters()
        for head in self.property_heads().values():
            head.reset_parameters()

    def _heads_repr(self) -> str:
        heads = list(self.property_heads())
        return f', properties={heads}' if heads else ''

    def property_heads(self) -> Dict[str, torch.nn.Module]:
        r"""The model's property heads by name (empty without any)."""
        heads = self._modules.get('heads')
        return {} if heads is None else dict(heads.items())

    def set_fused(self, enabled: bool = True) -> 'AtomisticModel':
        r"""Whether the continuous-filter convolutions run as the fused C++
        operator outside training (:func:`~pyg_schnet.nn.fused.fused_cfconv`;
        on by default where the package was built with it, see
        :func:`~pyg_schnet.nn.fused.fused_available`). :obj:`False` takes
        the reference path (the same numbers, more operations). Returns the
        model."""
        check_arguments(enabled=(enabled, bool))
        for module in self.modules():
            if hasattr(module, 'fused') and isinstance(module.fused, bool):
                module.fused = enabled
        return self

    def interaction_blocks(self) -> List[torch.nn.Module]:
        r"""The interaction applied at each pass, in order (one block per
        pass by default; :class:`DTNN` may repeat one shared block)."""
        return list(self.interactions)

    # -- the hot path -------------------------------------------------------
    def representation(self, z: Tensor, edge_index: Tensor,
                       edge_weight: Tensor, symmetric: bool = False
                       ) -> Tensor:
        r"""Atom features :obj:`[N, F]` from atomic numbers and distances
        (Å) of the graph's edges: the element embedding refined by residual
        interactions, :math:`\mathbf{x} \leftarrow \mathbf{x} +
        \mathbf{v}(\mathbf{x}, d, \mathbf{e}(d))`. With :obj:`symmetric`,
        :obj:`edge_index` lists each pair once and carries both messages
        (:func:`~pyg_schnet.graph.half_pairs`)."""
        x = self.embedding(z)
        edge_attr = self.rbf(edge_weight)
        for interaction in self.interaction_blocks():
            x = x + interaction(x, edge_index, edge_weight, edge_attr,
                                symmetric)
        return x

    def features(self, z: Tensor, pos: Tensor, edge_index: Tensor,
                 batch: Tensor, cell: Optional[Tensor] = None,
                 cell_offsets: Optional[Tensor] = None,
                 symmetric: bool = False) -> Tensor:
        r"""The final atom features :math:`\mathbf{x}^{(T)}` :obj:`[N, F]`
        on a prebuilt graph (arguments as in :meth:`energy`)."""
        vec = edge_vectors(pos, edge_index, batch, cell, cell_offsets)
        return self.representation(z, edge_index, vec.norm(dim=-1),
                                   symmetric)

    def _atom_energies(self, x: Tensor, z: Tensor) -> Tensor:
        y = self.readout.per_atom(x).squeeze(-1)
        if self.use_atomref:
            y = y.to(torch.float64) + self.atomref[z]
        return y

    def per_atom_energy(self, z: Tensor, pos: Tensor, edge_index: Tensor,
                        batch: Tensor, cell: Optional[Tensor] = None,
                        cell_offsets: Optional[Tensor] = None,
                        symmetric: bool = False) -> Tensor:
        r"""Atom-wise contributions :math:`y_i` (eV, reference energies
        included), shape :obj:`[N]`: the local energies whose sum is
        :math:`E`."""
        return self._atom_energies(
            self.features(z, pos, edge_index, batch, cell, cell_offsets,
                          symmetric), z)

    def energy(self, z: Tensor, pos: Tensor, edge_index: Tensor,
               batch: Tensor, num_graphs: int,
               cell: Optional[Tensor] = None,
               cell_offsets: Optional[Tensor] = None,
               symmetric: bool = False) -> Tensor:
        r"""The energy (eV) per graph, shape :obj:`[num_graphs]`, on a
        prebuilt graph: no checks, no data-dependent control flow, so it
        compiles with :func:`torch.compile` without graph breaks.

        Args:
            z (torch.Tensor): Atomic numbers :obj:`[N]`.
            pos (torch.Tensor): Positions :obj:`[N, 3]` in Å.
            edge_index (torch.Tensor): :obj:`[2, E]`, row 0 neighbour
                :math:`j`, row 1 centre :math:`i`.
            batch (torch.Tensor): Sorted graph index per atom :obj:`[N]`.
            num_graphs (int): Number of graphs :math:`B`.
            cell (torch.Tensor, optional): Cells :obj:`[B, 3, 3]` in Å.
            cell_offsets (torch.Tensor, optional): Image shifts
                :obj:`[E, 3]`.
            symmetric (bool, optional): :obj:`edge_index` (and
                :obj:`cell_offsets`) list each unordered pair once, as
                :func:`~pyg_schnet.graph.half_pairs` selects them; every
                pair term is then computed once for both directions (the
                same energy as the full list, faster).
                (default: :obj:`False`)
        """
        y = self.per_atom_energy(z, pos, edge_index, batch, cell,
                                 cell_offsets, symmetric)
        return self.readout.aggregate(y, batch, num_graphs)

    # -- the user-facing call ------------------------------------------------
    def forward(self, data: Data, forces: bool = False,
                stress: bool = False) -> ModelOutput:
        r"""Energy of every graph of :obj:`data`, and forces and stress when
        asked.

        :obj:`data` is a :class:`~torch_geometric.data.Data` or
        :class:`~torch_geometric.data.Batch` with :obj:`z` :obj:`[N]` and
        :obj:`pos` :obj:`[N, 3]` (Å), optionally :obj:`batch`, :obj:`cell`
        :obj:`[B, 3, 3]` (Å) with :obj:`pbc` :obj:`[B, 3]`, and a prebuilt
        :obj:`edge_index` (with :obj:`cell_offsets` for periodic
        structures). Without :obj:`edge_index` the radius graph is built
        here at the model's cutoff.

        Args:
            data: The structures.
            forces (bool, optional): Also return
                :math:`\mathbf{F} = -\partial E / \partial \mathbf{r}`
                :obj:`[N, 3]` in eV/Å. (default: :obj:`False`)
            stress (bool, optional): Also return the stress
                :math:`\frac{1}{V}\partial E / \partial
                \boldsymbol{\varepsilon}` :obj:`[B, 3, 3]` in eV/Å³ (ASE's
                convention; needs a non-singular cell).
                (default: :obj:`False`)

        Returns:
            The energy :obj:`[B]` in eV; with :obj:`forces` and/or
            :obj:`stress`, a tuple :obj:`(energy, forces)`,
            :obj:`(energy, stress)` or :obj:`(energy, forces, stress)`.
            While training, the derivatives keep their graph
            (:obj:`create_graph=True`) so a force loss can be minimised.

        Raises:
            ValueError: for unknown elements, non-finite positions or cells,
                overlapping atoms, shape or dtype mismatches, an unsorted
                :obj:`batch`, a singular cell, or a prebuilt graph whose
                cutoff is smaller than the model's.
        """
        inputs = self._checked(data, forces or stress, stress)
        if not (forces or stress):
            return self.energy(*inputs)
        out = self.evaluate(*inputs, forces=forces, stress=stress)
        return tuple(out[key] for key in ('energy', 'forces', 'stress')
                     if key in out)

    def compute(self, data: Data, forces: bool = False,
                stress: bool = False) -> Dict[str, Tensor]:
        r"""Everything the model predicts for :obj:`data`, in one pass: the
        energy and, when asked, forces and stress as :meth:`forward`
        returns them, and the output of every property head
        (:obj:`properties` of the constructor):

        * :obj:`dipole` :obj:`[B, 3]` in e·Å and :obj:`charges` :obj:`[N]`
          in e (:class:`~pyg_schnet.nn.properties.Dipole`; the total
          charge is :obj:`data.charge` :obj:`[B]` in e when it is there,
          else zero),
        * :obj:`polarizability` :obj:`[B, 3, 3]` in Å³
          (:class:`~pyg_schnet.nn.properties.Polarizability`),
        * :obj:`spatial_extent` :obj:`[B]` in Å²
          (:class:`~pyg_schnet.nn.properties.SpatialExtent`).

        Raises:
            ValueError: as :meth:`forward`, and for property heads on
                periodic structures (a dipole of a cell is not defined by
                its positions).
        """
        inputs = self._checked(data, forces or stress, stress)
        if self.property_heads() and inputs[5] is not None:
            raise ValueError(
                f'the property heads {sorted(self.property_heads())} are for '
                f'molecules; this structure is periodic (a dipole or '
                f'polarizability of a periodic cell is not defined by its '
                f'positions)')
        return self.evaluate(*inputs, forces=forces, stress=stress,
                             properties=True, charge=data.get('charge'))

    def _checked(self, data: Data, derivatives: bool, stress: bool
                 ) -> Tuple[Tensor, Tensor, Tensor, Tensor, int,
                            Optional[Tensor], Optional[Tensor], bool]:
        r"""The checked inputs of :meth:`energy` / :meth:`evaluate`:
        :obj:`(z, pos, edge_index, batch, num_graphs, cell, cell_offsets,
        symmetric)`."""
        for key in ('z', 'pos'):
            if getattr(data, key, None) is None:
                raise ValueError(f"the structure has no '{key}' (atomic "
                                 f"numbers 'z' [N] and positions 'pos' "
                                 f"[N, 3] in Å are needed)")
        if derivatives and torch.is_inference_mode_enabled():
            raise ValueError('forces and stress need autograd, which '
                             'torch.inference_mode() disables: call the '
                             'model under torch.no_grad() or with no '
                             'context manager')
        if derivatives and any(
                torch.is_tensor(v) and v.is_inference()
                for v in data.values()):
            data = data.clone()  # inference tensors cannot enter autograd
        z, pos = data.z, data.pos
        batch = data.batch if 'batch' in data and data.batch is not None \
            else None
        num_graphs = 1 if batch is None else getattr(data, 'num_graphs',
                                                     None)
        if num_graphs is None:
            num_graphs = int(batch.max()) + 1 if batch.numel() else 1
        check_structure(z, pos, batch, self.max_z)
        self._warn_unseen_elements(z)
        weight = next(self.parameters())
        if pos.dtype != weight.dtype:
            raise ValueError(f"'pos' is {pos.dtype} but the model's weights "
                             f"are {weight.dtype}: cast one of them "
                             f"(e.g. model.to({pos.dtype}))")
        if batch is None:
            batch = torch.zeros(z.numel(), dtype=torch.long, device=z.device)
        cell, pbc = check_cell(data.get('cell'), data.get('pbc'), num_graphs)
        if cell is not None:
            cell = cell.to(pos.dtype)

        edge_index, cell_offsets, symmetric = self._graph(
            data, pos, batch, cell, pbc, num_graphs)
        with torch.no_grad():
            dist = edge_vectors(pos, edge_index, batch, cell,
                                cell_offsets).norm(dim=-1)
        check_distances(edge_index, dist, self.min_distance)

        if stress and (cell is None or not bool(pbc.any(dim=1).all())):
            raise ValueError('stress needs a periodic cell (data.cell and '
                             'data.pbc with at least one periodic '
                             'direction); this structure has none')
        return (z, pos, edge_index, batch, num_graphs, cell, cell_offsets,
                symmetric)

    def evaluate(self, z: Tensor, pos: Tensor, edge_index: Tensor,
                 batch: Tensor, num_graphs: int,
                 cell: Optional[Tensor] = None,
                 cell_offsets: Optional[Tensor] = None,
                 symmetric: bool = False, forces: bool = True,
                 stress: bool = False, energies: bool = False,
                 properties: bool = False,
                 charge: Optional[Tensor] = None) -> Dict[str, Tensor]:
        r"""Energies and their derivatives on a prebuilt graph (no input
        checks): the differentiating half of :meth:`forward`, used by it and
        by the MD engines, which build and reuse graphs themselves.

        Args:
            z (torch.Tensor): As in :meth:`energy`, and so are
                :obj:`pos`, :obj:`edge_index`, :obj:`batch`,
                :obj:`num_graphs`, :obj:`cell`, :obj:`cell_offsets` and
                :obj:`symmetric`.
            forces (bool, optional): :math:`-\partial E/\partial
                \mathbf{r}`, :obj:`[N, 3]` in eV/Å. (default: :obj:`True`)
            stress (bool, optional): :math:`\frac{1}{V}\partial E /
                \partial \boldsymbol{\varepsilon}`, :obj:`[B, 3, 3]` in
                eV/Å³ (needs :obj:`cell`). (default: :obj:`False`)
            energies (bool, optional): The per-atom energies :obj:`[N]` in
                eV too. (default: :obj:`False`)
            properties (bool, optional): The outputs of the property heads
                too (see :meth:`compute`), from the same atom features.
                (default: :obj:`False`)
            charge (torch.Tensor, optional): Total charge :obj:`[B]` in e
                for the :obj:`dipole` head. (default: :obj:`None`, neutral)

        Returns:
            A dict with :obj:`energy` :obj:`[B]` (eV) and, as asked,
            :obj:`forces`, :obj:`stress`, :obj:`energies`. While training
            the derivatives keep their graph (:obj:`create_graph=True`).
        """
        with torch.enable_grad():
            if not pos.requires_grad:
                pos = pos.detach().requires_grad_(True)
            inputs = []
            if forces:
                inputs.append(pos)
            strained_pos, strained_cell = pos, cell
            if stress:
                volume = torch.linalg.det(cell).abs()
                if bool((volume < 1e-8).any()):
                    raise ValueError('stress needs a cell with non-zero '
                                     'volume')
                strain = torch.zeros((num_graphs, 3, 3), dtype=pos.dtype,
                                     device=pos.device, requires_grad=True)
                inputs.append(strain)
                sym = 0.5 * (strain + strain.transpose(1, 2))
                strained_pos = pos + torch.einsum('ni,nij->nj', pos,
                                                  sym[batch])
                strained_cell = cell + torch.bmm(cell, sym)
            # Outside training only forces/stress are differentiated: the
            # fused convolutions skip their weights' gradients.
            with frozen_weights() if not self.training else \
                    contextlib.nullcontext():
                x = self.features(z, strained_pos, edge_index, batch,
                                  strained_cell, cell_offsets, symmetric)
            y = self._atom_energies(x, z)
            energy = self.readout.aggregate(y, batch, num_graphs)
            heads = self._head_outputs(x, pos, z, batch, num_graphs,
                                       charge) if properties else {}
            grads = torch.autograd.grad(energy.sum(), inputs,
                                        create_graph=self.training) \
                if inputs else []
        out = {'energy': energy, **heads}
        if forces:
            out['forces'] = -grads[0]
        if stress:
            out['stress'] = grads[-1] / volume.view(-1, 1, 1)
        if energies:
            out['energies'] = y
        if not self.training:
            out = {key: value.detach() for key, value in out.items()}
        return out

    def _head_outputs(self, x: Tensor, pos: Tensor, z: Tensor,
                      batch: Tensor, num_graphs: int,
                      charge: Optional[Tensor]) -> Dict[str, Tensor]:
        out: Dict[str, Tensor] = {}
        for name, head in self.property_heads().items():
            if name == 'dipole':
                out['dipole'], out['charges'] = head(x, pos, z, batch,
                                                     num_graphs, charge)
            else:
                out[name] = head(x, pos, z, batch, num_graphs)
        return out

    def _graph(self, data: Data, pos: Tensor, batch: Tensor,
               cell: Optional[Tensor], pbc: Optional[Tensor],
               num_graphs: int
               ) -> Tuple[Tensor, Optional[Tensor], bool]:
        r"""The graph to compute on: each pair once (with
        :obj:`symmetric=True`) when the edge list holds both directions of
        every pair, as every graph this package builds does; the list as
        given otherwise."""
        edge_index, cell_offsets = self._full_graph(data, pos, batch, cell,
                                                    pbc, num_graphs)
        if data.get('edge_index') is None:  # built here: symmetric
            keep = canonical_mask(edge_index, cell_offsets)
            half = keep.nonzero().view(-1)
        else:
            half = half_pairs(edge_index, cell_offsets, pos.size(0))
        if half is None:
            return edge_index, cell_offsets, False
        return (edge_index.index_select(1, half),
                None if cell_offsets is None else
                cell_offsets.index_select(0, half), True)

    def _full_graph(self, data: Data, pos: Tensor, batch: Tensor,
                    cell: Optional[Tensor], pbc: Optional[Tensor],
                    num_graphs: int) -> Tuple[Tensor, Optional[Tensor]]:
        edge_index = data.get('edge_index')
        cell_offsets = data.get('cell_offsets')
        if cell is None and cell_offsets is not None and \
                cell_offsets.numel() and bool(cell_offsets.any()):
            raise ValueError(
                "the graph has periodic edges ('cell_offsets') but the "
                "structures have no 'cell': was a molecule without 'cell' "
                'batched before a crystal? PyG keeps only the fields of the '
                "first structure of a batch; give every structure 'cell' "
                "and 'pbc' (zeros/False for molecules, as "
                'pyg_schnet.data.atomistic_data does)')
        if edge_index is None:
            return build_graph(pos, self.cutoff, batch, cell, pbc,
                               num_graphs)
        if edge_index.dim() != 2 or edge_index.size(0) != 2:
            raise ValueError(f"'edge_index' must have shape [2, E], got "
                             f"{list(edge_index.shape)}")
        if edge_index.dtype not in (torch.long, torch.int32):
            raise ValueError(f"'edge_index' must hold integer atom indices "
                             f"(torch.long), got {edge_index.dtype}")
        graph_cutoff = data.get('graph_cutoff')
        if graph_cutoff is not None and \
                bool((graph_cutoff < self.cutoff - 1e-6).any()):
            raise ValueError(
                f'the prebuilt graph has cutoff '
                f'{float(graph_cutoff.min()):g} Å, below the model cutoff '
                f'{self.cutoff:g} Å: neighbours in between would be missing')
        if edge_index.numel() and (int(edge_index.min()) < 0 or
                                   int(edge_index.max()) >= pos.size(0)):
            raise ValueError("'edge_index' refers to atoms that do not "
                             "exist")
        if cell is None:
            return edge_index, None
        if cell_offsets is None:
            raise ValueError("periodic structure with a prebuilt "
                             "'edge_index' but no 'cell_offsets'")
        if cell_offsets.shape != (edge_index.size(1), 3):
            raise ValueError(f"'cell_offsets' must have shape "
                             f"[{edge_index.size(1)}, 3], got "
                             f"{list(cell_offsets.shape)}")
        return edge_index, cell_offsets
