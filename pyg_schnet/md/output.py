r"""The files of an MD run: a trajectory and a log, written to
``FILE.partial`` and given their final names only when the run finished.

An interrupted or failed run (Ctrl-C, an exception in the model, exploding
dynamics, kill -9) never replaces an earlier complete file: what it wrote
stays in ``FILE.partial``, flushed after every frame, and the error says
where."""
import os
from typing import TYPE_CHECKING, List, Optional, Sequence

from pyg_schnet.io import commit_file

if TYPE_CHECKING:  # pragma: no cover
    from pyg_schnet.md.rpmd import RingPolymerMD

TRAJECTORY_SUFFIXES = ('.xyz', '.extxyz', '.traj')

LOG_HEADER = ('# step time_fs system potential_eV kinetic_primitive_eV '
              'kinetic_virial_eV temperature_K conserved_eV\n')
#: The log's extra columns with a committee: its energy deviation (bead
#: average) and its largest atom force deviation.
COMMITTEE_COLUMNS = ' energy_std_eV forces_std_max_eV/A'


def check_trajectory_name(path: str) -> str:
    r"""The ASE format of a trajectory file name (:obj:`"extxyz"` or
    :obj:`"traj"`).

    Raises:
        ValueError: for any other suffix.
    """
    if not path.endswith(TRAJECTORY_SUFFIXES):
        raise ValueError(f'the trajectory {path} must end in .extxyz, .xyz '
                         f'or .traj')
    return 'traj' if path.endswith('.traj') else 'extxyz'


def _fsync_close(handle) -> None:
    handle.flush()
    if hasattr(handle, 'fileno'):
        os.fsync(handle.fileno())
    handle.close()


class MDOutput:
    r"""The trajectory (one frame per system every write: its centroid or
    all beads) and the log (one line per system every write) of a run.

    Both go to ``FILE.partial``; :meth:`finish` renames them to their final
    names (after an fsync), :meth:`abandon` closes them and leaves them
    where they are. The final names are touched by nothing else.

    Args:
        trajectory (str, optional): ``.extxyz``/``.xyz`` or ``.traj``.
        log (str, optional): A text file.
        committee (bool, optional): Log the committee's deviations too.
    """
    def __init__(self, trajectory: Optional[str] = None,
                 log: Optional[str] = None, committee: bool = False):
        if trajectory and log and os.path.abspath(trajectory) == \
                os.path.abspath(log):
            raise ValueError(f'the trajectory and the log are the same file '
                             f'({trajectory}); give them different names')
        self.trajectory, self.log_path = trajectory, log
        self.format = check_trajectory_name(trajectory) if trajectory \
            else None
        self._traj = self._log = None
        self.committee = committee
        if trajectory:
            if self.format == 'traj':
                from ase.io.trajectory import Trajectory
                self._traj = Trajectory(trajectory + '.partial', 'w')
            else:
                self._traj = open(trajectory + '.partial', 'w')
        if log:
            self._log = open(log + '.partial', 'w')
            self._log.write(LOG_HEADER.rstrip('\n') + (
                COMMITTEE_COLUMNS if committee else '') + '\n')
            self._log.flush()

    @property
    def partial_files(self) -> List[str]:
        r"""The ``.partial`` files this output writes."""
        return [f'{p}.partial' for p in (self.trajectory, self.log_path)
                if p]

    def write(self, md: 'RingPolymerMD', beads: bool = False) -> None:
        r"""Writes the current state of every system of :obj:`md`."""
        if self._traj is not None:
            for s in range(md.S):
                atoms = md.snapshot(s, beads)
                if self.format == 'traj':
                    self._traj.write(atoms)
                else:
                    import ase.io
                    ase.io.write(self._traj, atoms, format='extxyz')
            if self.format != 'traj':
                self._traj.flush()
        if self._log is not None:
            obs = {k: v.double().cpu().numpy()
                   for k, v in md.observables().items()}
            time = md.time_fs
            for s in range(md.S):
                self._log.write(
                    f"{md.step_count} {time:.3f} {s} "
                    f"{obs['potential'][s]:.8f} "
                    f"{obs['kinetic_primitive'][s]:.8f} "
                    f"{obs['kinetic_virial'][s]:.8f} "
                    f"{obs['temperature'][s]:.3f} "
                    f"{obs['conserved'][s]:.8f}"
                    + (f" {obs['energy_std'][s]:.8f} "
                       f"{obs['forces_std_max'][s]:.6f}"
                       if self.committee else '') + '\n')
            self._log.flush()

    def _close(self) -> None:
        for handle in (self._traj, self._log):
            if handle is not None:
                if hasattr(handle, 'fileno'):
                    _fsync_close(handle)
                else:  # ase Trajectory
                    handle.close()
        self._traj = self._log = None

    def finish(self) -> None:
        r"""The run is complete: the files take their final names."""
        self._close()
        for path in (self.trajectory, self.log_path):
            if path:
                commit_file(f'{path}.partial', path)

    def abandon(self) -> List[str]:
        r"""The run did not finish: the files stay ``.partial`` (complete up
        to the last frame written); returns their paths."""
        self._close()
        return self.partial_files



def check_output_names(trajectory: str, log: Optional[str],
                       inputs: Sequence[str] = (),
                       overwrite: bool = False) -> None:
    r"""Checks the output files of a run before it starts: a trajectory
    suffix ASE writes, a log that is not the trajectory, neither of them an
    input file (even with :obj:`overwrite`), and existing files replaced
    only with :obj:`overwrite`.

    Raises:
        ValueError: for a bad suffix, the same file twice, or an input file
            as output.
        FileExistsError: for an existing output without :obj:`overwrite`.
    """
    check_trajectory_name(trajectory)
    names = [('--out', trajectory)] + ([('--log', log)] if log else [])
    if log and os.path.abspath(trajectory) == os.path.abspath(log):
        raise ValueError(f'--out and --log are the same file ({log}): the '
                         f'log lines would mix into the trajectory; give '
                         f'the log another name')
    for flag, path in names:
        for source in inputs:
            if source and os.path.exists(source) and os.path.exists(path) \
                    and os.path.samefile(source, path):
                raise ValueError(f'{flag} {path} is the input structure; '
                                 f'write the {flag[2:]} to another file')
            if source and os.path.abspath(source) == os.path.abspath(path):
                raise ValueError(f'{flag} {path} is the input structure; '
                                 f'write the {flag[2:]} to another file')
        if os.path.exists(path) and not overwrite:
            raise FileExistsError(f'{path} exists; pass --overwrite to '
                                  f'replace it')
