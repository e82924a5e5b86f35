"""A lock that keeps two processes out of one run folder."""
import errno
import fcntl
import os
import socket
import warnings
from pathlib import Path
from typing import Optional, Union

PathLike = Union[str, os.PathLike]


class RunLockedError(RuntimeError):
    r"""Another live process holds the run folder."""


class RunLock:
    r"""An exclusive lock on a run folder, held while a training writes to
    it.

    The lock file :obj:`FOLDER/.lock` names its owner (process id and
    host). Ownership is an advisory :func:`fcntl.flock` on that file, which
    the kernel releases when the owner exits, however it exits (kill -9
    included): a lock file left behind by a dead process is taken over,
    with a warning naming the dead owner, and two live processes can never
    both hold the lock (no race between checking and taking it).

    Use as a context manager::

        with RunLock('runs/x'):
            ...  # train

    A folder the lock itself created is removed again when the block
    fails before anything but the lock file was written (a training that
    fails at its first check leaves no empty run folder behind).

    Raises:
        RunLockedError: if a live process holds the lock, naming it.
    """
    name = '.lock'

    def __init__(self, folder: PathLike):
        self.folder = Path(folder)
        self.path = self.folder / self.name
        self._fd: Optional[int] = None
        self._created = False

    def acquire(self) -> 'RunLock':
        self._created = not self.folder.exists()
        self.folder.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except PermissionError as e:
            raise PermissionError(f'cannot write to {self.folder}: '
                                  f'permission denied') from e
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            owner = _read(fd)
            os.close(fd)
            if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise RunLockedError(
                    f'{self.folder} is in use by another training '
                    f'({owner or "owner unknown"}); wait for it to end or '
                    f'choose another --run-dir') from None
            raise
        previous = _read(fd)
        if previous and previous != _me():
            warnings.warn(f'{self.folder}: taking over the lock of '
                          f'{previous}, which is no longer running',
                          stacklevel=2)
        os.ftruncate(fd, 0)
        os.pwrite(fd, (_me() + '\n').encode(), 0)
        os.fsync(fd)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is None:
            return
        try:
            os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> 'RunLock':
        return self.acquire()

    def __exit__(self, exc_type, *exc) -> None:
        if exc_type is not None and self._created and self._fd is not None:
            self._remove_if_empty()
        self.release()

    def _remove_if_empty(self) -> None:
        # Still holding the lock: nobody else can be using the folder; a
        # process that creates a file in it meanwhile keeps it.
        try:
            if [p.name for p in self.folder.iterdir()] == [self.name]:
                self.path.unlink()
                self.folder.rmdir()
        except OSError:
            pass


def _me() -> str:
    return f'pid {os.getpid()} on {socket.gethostname()}'


def _read(fd: int) -> str:
    try:
        return os.pread(fd, 200, 0).decode(errors='replace').strip()
    except OSError:  # pragma: no cover
        return ''
