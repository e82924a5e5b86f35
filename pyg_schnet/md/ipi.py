r"""A pyg_schnet model as a force client of i-PI (the path-integral engine),
through ASE's socket client: i-PI sends positions and cell (Å, as ASE
converts them), the client returns energy, forces and virial of the
model's :class:`~pyg_schnet.md.SchNetCalculator`. i-PI hands the beads of
a path-integral run to however many clients are connected, on one machine
(UNIX sockets) or several (TCP), so P beads are computed by up to P
processes at once.
"""
import time
from typing import Optional

import torch
from ase import Atoms

from pyg_schnet.md.calculator import SchNetCalculator
from pyg_schnet.models import AtomisticModel


def ipi_client(model: AtomisticModel, atoms: Atoms,
               unixsocket: Optional[str] = None,
               host: Optional[str] = None, port: Optional[int] = None,
               dtype: torch.dtype = torch.float64,
               wait: float = 60.0) -> int:
    r"""Connects to a running i-PI server and serves it the model's forces
    until i-PI ends the run; returns the number of force calls served.

    Args:
        model (AtomisticModel): The model.
        atoms (ase.Atoms): The atoms i-PI simulates (their numbers, in
            i-PI's order; positions and cell come from i-PI).
        unixsocket (str, optional): The name of i-PI's UNIX socket (its
            ``<address>`` with ``mode='unix'``).
        host (str, optional): i-PI's host for a TCP socket
            (``mode='inet'``), with :obj:`port`.
        port (int, optional): i-PI's TCP port.
        dtype (torch.dtype, optional): (default: :obj:`torch.float64`)
        wait (float, optional): Seconds to keep trying while the server's
            socket is not open yet. (default: :obj:`60.0`)

    Raises:
        ValueError: unless exactly one of :obj:`unixsocket` and
            :obj:`host`/:obj:`port` is given.
        ConnectionError: if no server answers within :obj:`wait` seconds.
    """
    from ase.calculators.socketio import SocketClient

    if (unixsocket is None) == (host is None or port is None):
        raise ValueError('give the i-PI socket: a UNIX socket name, or a '
                         'host and a port')
    atoms = atoms.copy()
    calc = SchNetCalculator(model, dtype=dtype)
    counter = {'calls': 0}
    original = calc.calculate

    def counted(*args, **kwargs):
        counter['calls'] += 1
        return original(*args, **kwargs)
    calc.calculate = counted
    atoms.calc = calc
    deadline = time.monotonic() + wait
    while True:
        try:
            client = SocketClient(unixsocket=unixsocket, host=host or
                                  'localhost', port=port)
            break
        except OSError as e:
            if time.monotonic() > deadline:
                where = f'UNIX socket {unixsocket}' if unixsocket else \
                    f'{host}:{port}'
                raise ConnectionError(f'no i-PI server at {where} after '
                                      f'{wait:g} s ({e})') from None
            time.sleep(0.2)
    try:
        client.run(atoms)
    finally:
        client.close()
    return counter['calls']
