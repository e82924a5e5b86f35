r"""How many CPU threads torch uses: the package's rule, measured.

On a 2-core machine (``benchmarks/threads.py``, SchNet F = 128, T = 6,
energy + forces) two threads against one were, on an idle machine,
0.91x for one ethanol (36 pairs) and 1.37-1.46x from ~1,200 pairs (a QM9
training batch, C20 x 8 beads, Cu crystals of 864 and 4,000 atoms); with
the cores busy with other work (2 busy-looping processes beside a
training) two threads were 2-5x *slower* than one up to 18,000 pairs and
0.91x at 84,000. Threads that wait for a descheduled partner at every
operation cost far more than they gain.

The rule (:func:`choose_threads`): one thread for small work (fewer than
:data:`SMALL_PAIRS` pairs per model call) and on a busy machine; on an
idle one, as many threads as cores are free, counting the tasks running
at the start (:func:`busy_cpus`). ``--threads N`` or
``OMP_NUM_THREADS`` (when the user set it) override it. The command line,
:class:`~pyg_schnet.md.SchNetCalculator` (at its first calculation) and
:class:`~pyg_schnet.md.RingPolymerMD` apply it (their ``threads`` argument:
``"rule"``, a number, or ``None`` to leave torch alone). Imports no torch
until threads are set.
"""
import os
from typing import Optional, Tuple, Union

#: Below this many pairs per model call one thread is faster (ethanol, 36
#: pairs: 0.91x with two); from ~1,200 pairs two threads gained 1.37x.
SMALL_PAIRS = 1000


def busy_cpus(samples: int = 5, interval: float = 0.02) -> float:
    r"""How many other tasks are running now: the runnable tasks the kernel
    counts (``/proc/loadavg``, 4th field) less this process, the median of
    :obj:`samples` readings :obj:`interval` s apart. Unlike the 1-minute
    load average it does not remember work that just ended (an install
    or a test run before the command). Elsewhere than Linux, the 1-minute
    load average."""
    import statistics
    import time
    readings = []
    for k in range(samples):
        try:
            with open('/proc/loadavg') as f:
                running = int(f.read().split()[3].split('/')[0])
        except (OSError, ValueError, IndexError):
            try:
                return os.getloadavg()[0]
            except (AttributeError, OSError):  # pragma: no cover
                return 0.0
        readings.append(max(0, running - 1))
        if k + 1 < samples:
            time.sleep(interval)
    return float(statistics.median(readings))


def free_cores(cores: Optional[int] = None,
               load: Optional[float] = None) -> int:
    r"""Cores not busy with other work: :obj:`cores` (default: the CPUs
    this process may run on) minus :obj:`load` rounded (default: the tasks
    running now, :func:`busy_cpus`), at least 1."""
    if cores is None:
        try:
            cores = len(os.sched_getaffinity(0))
        except AttributeError:  # pragma: no cover - not Linux
            cores = os.cpu_count() or 1
    if load is None:
        load = busy_cpus()
    return max(1, min(cores, cores - int(round(load))))


def choose_threads(pairs: Optional[int] = None, cores: Optional[int] = None,
                   load: Optional[float] = None) -> int:
    r"""The package's number of threads for work of :obj:`pairs` pairs per
    model call (:obj:`None`: training-sized batches, above
    :data:`SMALL_PAIRS`): 1 for small work, else the free cores
    (:func:`free_cores`), so 1 on a busy machine."""
    if pairs is not None and pairs < SMALL_PAIRS:
        return 1
    return free_cores(cores, load)


def set_threads(requested: Optional[int] = None,
                pairs: Optional[int] = None) -> Tuple[int, str]:
    r"""Sets torch's intra-op threads: :obj:`requested` if given, else
    ``OMP_NUM_THREADS`` if the user set it, else :func:`choose_threads`.

    Returns:
        :obj:`(threads, why)`, :obj:`why` one of :obj:`"--threads"`,
        :obj:`"OMP_NUM_THREADS"`, :obj:`"rule"`.

    Raises:
        ValueError: for a requested count below 1, or an
            ``OMP_NUM_THREADS`` that is not a positive integer.
    """
    import torch
    if requested is not None:
        if isinstance(requested, bool) or not isinstance(requested, int) \
                or requested < 1:
            raise ValueError(f'--threads must be a positive integer (got '
                             f'{requested!r})')
        threads, why = requested, '--threads'
    elif os.environ.get('OMP_NUM_THREADS'):
        text = os.environ['OMP_NUM_THREADS'].strip()
        if not text.isdigit() or int(text) < 1:
            raise ValueError(f'OMP_NUM_THREADS must be a positive integer '
                             f'(got {text!r})')
        threads, why = int(text), 'OMP_NUM_THREADS'
    else:
        threads, why = choose_threads(pairs), 'rule'
    torch.set_num_threads(threads)
    return threads, why


def check_threads_argument(threads: Union[int, str, None]
                           ) -> Union[int, str, None]:
    r"""Checks the :obj:`threads` argument of the MD engines:
    :obj:`"rule"`, :obj:`None` or a positive integer.

    Raises:
        ValueError: naming the value.
    """
    if threads is None or threads == 'rule':
        return threads
    if isinstance(threads, bool) or not isinstance(threads, int) or \
            threads < 1:
        raise ValueError(f"'threads' must be 'rule', None or a positive "
                         f'integer (got {threads!r})')
    return threads
