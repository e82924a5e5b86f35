"""What a run ran on, for its record (results.json, model cards,
benchmarks)."""
import os
import platform

import torch


def cpu_name() -> str:
    r"""The processor's model name (from ``/proc/cpuinfo`` on Linux)."""
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or 'unknown CPU'


def describe_hardware(device: str = 'cpu') -> str:
    r"""A one-line description: the GPU's name for CUDA, else the CPU's
    with its cores and torch's thread count."""
    if str(device).startswith(('cuda', 'gpu')) and torch.cuda.is_available():
        return f'{torch.cuda.get_device_name()} (CUDA)'
    return (f'{cpu_name()}, {os.cpu_count()} cores, '
            f'{torch.get_num_threads()} torch threads')
