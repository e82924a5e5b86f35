"""ASE calculators for pyg_schnet models and committees of them."""
import copy
import os
import warnings
from typing import List, Optional, Sequence, Union

import numpy as np
import torch
from ase.calculators.calculator import Calculator, all_changes
from ase.stress import full_3x3_to_voigt_6_stress

from pyg_schnet.graph import check_distances, check_structure
from pyg_schnet.md.graph import VerletGraph
from pyg_schnet.models import AtomisticModel, edge_vectors, load_model
from pyg_schnet.models.committee import Committee
from pyg_schnet.threads import check_threads_argument, set_threads


class SchNetCalculator(Calculator):
    r"""An :class:`ase.calculators.calculator.Calculator` of a trained
    SchNet or DTNN model: :obj:`energy` and :obj:`free_energy` (eV, equal:
    the model gives no electronic entropy), :obj:`forces` (eV/Å),
    :obj:`stress` (eV/Å³, Voigt order, ASE's sign convention; periodic
    structures only) and per-atom :obj:`energies` (eV). A model with
    property heads (:obj:`properties` of :class:`~pyg_schnet.models.SchNet`)
    adds, for molecules, :obj:`dipole` (e·Å, ASE's name and unit, about
    the centre of mass; the total charge is :obj:`atoms.info["charge"]`,
    default 0), :obj:`charges` (the latent atomic charges, e),
    :obj:`polarizability` (:obj:`[3, 3]`, Å³) and :obj:`spatial_extent`
    (Å²). No unit conversion happens anywhere: the model works in ASE's
    units.

    The graph is built at the cutoff plus :obj:`skin` and reused while no
    atom has moved more than half the skin (:class:`VerletGraph`), with
    every pair listed once: the results are the same as with a fresh graph
    on every step.

    The calculator computes with its own copy of the model, in
    :obj:`dtype` on :obj:`device` and in evaluation mode; the model passed
    in is not changed.

    Works with ASE's optimisers (BFGS, FIRE, ...), its MD drivers
    (VelocityVerlet, Langevin, NPT) and, through
    :class:`ase.calculators.socketio.SocketClient`, with i-PI.

    Args:
        model (AtomisticModel): The model.
        device (str or torch.device, optional): Where to compute.
            (default: :obj:`"cpu"`)
        dtype (torch.dtype, optional): :obj:`torch.float32` or
            :obj:`torch.float64`. (default: :obj:`torch.float32`)
        skin (float, optional): Skin of the reused graph in Å.
            (default: :obj:`0.5`)
        max_force_std (float, optional): For a
            :class:`~pyg_schnet.models.committee.Committee`: warn when an
            atom's force deviation passes this many eV/Å.
            (default: :obj:`None`, never)
        tune_malloc (bool, optional): Call
            :func:`pyg_schnet.allocator.tune_allocator`, which changes
            glibc's ``malloc`` settings *for the whole process* (large
            graphs get faster, peak memory higher); :obj:`False` leaves
            them alone. (default: :obj:`True`)
        compile (bool, optional): Compute energies with a
            :func:`torch.compile`-d model (dynamic shapes, the reference
            path; forces by autograd). The first call pays the compile
            (9–40 s on 2 CPU cores) and it wins only on the smallest
            molecules: measured 1.1–1.5× faster than the default path on
            ethanol (two runs), slower on C20 and beyond
            (``benchmarks/README.md``);
            energies, forces and per-atom energies only (stress and
            property heads use the default path). (default: :obj:`False`)
        threads (int or str, optional): torch's threads *for the whole
            process*, set at the first calculation: :obj:`"rule"` the
            package's measured rule (:func:`pyg_schnet.threads.set_threads`:
            ``OMP_NUM_THREADS`` if set, else one thread below 1,000 pairs
            or on a busy machine, the free cores otherwise — as the
            ``pyg-schnet`` command does), a number, or :obj:`None` to leave
            torch's setting alone. (default: :obj:`"rule"`)
        **kwargs: Passed to :class:`~ase.calculators.calculator.Calculator`.
    """
    implemented_properties: List[str] = ['energy', 'free_energy', 'forces',
                                         'stress', 'energies']

    def __init__(self, model: AtomisticModel,
                 device: Union[str, torch.device] = 'cpu',
                 dtype: torch.dtype = torch.float32, skin: float = 0.5,
                 tune_malloc: bool = True,
                 max_force_std: Optional[float] = None,
                 compile: bool = False,
                 threads: Union[int, str, None] = 'rule', **kwargs):
        super().__init__(**kwargs)
        self._threads = check_threads_argument(threads)
        if not isinstance(compile, bool):
            raise ValueError(f"'compile' must be True or False (got "
                             f'{compile!r})')
        self.max_force_std = max_force_std
        if dtype not in (torch.float32, torch.float64):
            raise ValueError(f"'dtype' must be torch.float32 or float64, "
                             f'got {dtype}')
        if tune_malloc:
            from pyg_schnet.allocator import tune_allocator
            tune_allocator()
        self.device = torch.device(device)
        if self.device.type == 'cuda' and not torch.cuda.is_available():
            raise ValueError('device cuda was asked for, but torch sees no '
                             'CUDA GPU')
        self.dtype = dtype
        # The calculator's own copy: the caller's model keeps its dtype,
        # device and training mode.
        self.model = copy.deepcopy(model).to(device=self.device,
                                             dtype=dtype).eval()
        self.graph = VerletGraph(self.model.cutoff, skin)
        self._compiled = None
        if compile:
            if not isinstance(self.model, AtomisticModel) or \
                    self.model.readout.aggr != 'sum':
                raise ValueError("'compile' is for one energy model (a sum "
                                 f'readout), not this '
                                 f'{type(self.model).__name__}')
            reference = copy.deepcopy(self.model)
            if hasattr(reference, 'set_fused'):
                reference.set_fused(False)
            self._compiled = torch.compile(reference.per_atom_energy,
                                           dynamic=True, fullgraph=True)
        heads = getattr(self.model, 'property_heads', dict)()
        self.heads = sorted(heads)
        extra = (['dipole', 'charges'] if 'dipole' in heads else []) + \
            [name for name in ('polarizability', 'spatial_extent')
             if name in heads]
        if extra:
            self.implemented_properties = \
                list(type(self).implemented_properties) + extra

    def _compiled_evaluate(self, z, pos, edge_index, batch, cell, offsets):
        with torch.enable_grad():
            pos = pos.detach().requires_grad_(True)
            energies = self._compiled(z, pos, edge_index, batch, cell,
                                      offsets, True)
            (grad,) = torch.autograd.grad(energies.sum(), pos)
        return {'energy': energies.detach().sum().view(1),
                'energies': energies.detach(), 'forces': -grad}

    @classmethod
    def from_run(cls, path: Union[str, os.PathLike],
                 **kwargs) -> 'SchNetCalculator':
        r"""The calculator of a training run's model (a run folder, or a
        :obj:`model.pt` file)."""
        path = os.fspath(path)
        model_file = os.path.join(path, 'model.pt') if os.path.isdir(path) \
            else path
        model, _ = load_model(model_file)
        return cls(model, **kwargs)

    def calculate(self, atoms=None, properties=('energy', ),
                  system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        atoms = self.atoms
        z = torch.as_tensor(atoms.numbers, dtype=torch.long,
                            device=self.device)
        pos = torch.as_tensor(np.asarray(atoms.positions), dtype=self.dtype,
                              device=self.device)
        check_structure(z, pos, max_z=self.model.max_z)
        batch = torch.zeros(len(atoms), dtype=torch.long, device=self.device)
        periodic = bool(atoms.pbc.any())
        cell = pbc = None
        if periodic or atoms.cell.rank:
            cell = torch.as_tensor(np.asarray(atoms.cell), dtype=self.dtype,
                                   device=self.device).view(1, 3, 3)
            pbc = torch.as_tensor(atoms.pbc, device=self.device).view(1, 3)
        edge_index, offsets = self.graph(z, pos, batch, 1, cell, pbc)
        if self._threads is not None:  # once, when the work is known
            set_threads(None if self._threads == 'rule' else self._threads,
                        edge_index.size(1))
            self._threads = None
        if offsets is None:  # a molecule: no image shifts
            cell = None
        with torch.no_grad():
            dist = edge_vectors(pos, edge_index, batch, cell,
                                offsets).norm(dim=-1)
        check_distances(edge_index, dist, self.model.min_distance)
        stress = 'stress' in properties
        if stress and not periodic:
            from ase.calculators.calculator import PropertyNotImplementedError
            raise PropertyNotImplementedError(
                'stress needs a periodic structure')
        heads = bool(self.heads) and not periodic
        charge = torch.tensor([float(atoms.info.get('charge', 0.0))],
                              dtype=self.dtype, device=self.device) \
            if heads else None
        if self._compiled is not None and not stress and not heads:
            out = self._compiled_evaluate(z, pos, edge_index, batch, cell,
                                          offsets)
        else:
            out = self.model.evaluate(
                z, pos, edge_index, batch, 1, cell, offsets, symmetric=True,
                forces=True, stress=stress, energies=True,
                **({'properties': True, 'charge': charge} if heads else {}))
        energy = float(out['energy'][0])
        self.results = {
            'energy': energy, 'free_energy': energy,
            'forces': out['forces'].double().cpu().numpy(),
            'energies': out['energies'].double().cpu().numpy()}
        if stress:
            self.results['stress'] = full_3x3_to_voigt_6_stress(
                out['stress'][0].double().cpu().numpy())
        for name in ('dipole', 'charges', 'polarizability', 'spatial_extent'):
            if name in out:
                value = out[name].double().cpu().numpy()
                self.results[name] = value if name == 'charges' else \
                    (float(value[0]) if value.ndim == 1 else value[0])
        if 'energy_std' in out:  # a committee
            self.results['energy_std'] = float(out['energy_std'][0])
            self.results['forces_std'] = out['forces_std'].double().cpu() \
                .numpy()
            worst = float(self.results['forces_std'].max())
            if self.max_force_std is not None and worst > self.max_force_std:
                atom = int(self.results['forces_std'].argmax())
                warnings.warn(
                    f'the committee disagrees: the force deviation of atom '
                    f'{atom} is {worst:.3g} eV/Å (above max_force_std = '
                    f'{self.max_force_std} eV/Å): this structure is outside '
                    f'what the models learned', stacklevel=2)

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}({self.model!r}, '
                f'device={self.device}, dtype={self.dtype}, '
                f'skin={self.graph.skin})')


class CommitteeCalculator(SchNetCalculator):
    r"""The ASE calculator of a committee of :math:`K` models
    (:class:`~pyg_schnet.models.committee.Committee`): :obj:`energy`,
    :obj:`forces` (and :obj:`stress`, :obj:`energies`) are the members'
    means, and two more results say how much they disagree:
    :obj:`energy_std` (eV, the standard deviation of the :math:`K`
    energies) and :obj:`forces_std` (:obj:`[N]`, eV/Å: per atom, the RMS
    over the members of the deviation of its force from the mean force).
    With :obj:`max_force_std` a warning names the atom whose deviation
    passes it. Read them with ``atoms.calc.get_property('forces_std')``.

    Args:
        models (sequence of AtomisticModel): The members (two or more).
        **kwargs: As :class:`SchNetCalculator` (device, dtype, skin,
            max_force_std, tune_malloc).
    """
    implemented_properties: List[str] = SchNetCalculator\
        .implemented_properties + ['energy_std', 'forces_std']

    def __init__(self, models: Sequence[AtomisticModel], **kwargs):
        super().__init__(Committee(models), **kwargs)

    @classmethod
    def from_runs(cls, paths: Sequence[Union[str, os.PathLike]],
                  **kwargs) -> 'CommitteeCalculator':
        r"""The committee of training runs (run folders or
        :obj:`model.pt` files)."""
        models = []
        for path in paths:
            path = os.fspath(path)
            model_file = os.path.join(path, 'model.pt') \
                if os.path.isdir(path) else path
            models.append(load_model(model_file)[0])
        return cls(models, **kwargs)
