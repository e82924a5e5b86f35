"""Wall time of the command line answering before any work: `pyg-schnet
--help`, `--version`, a subcommand's `--help` and a mistyped option,
against `python -c "import torch"` (what every command used to pay first).

    .venv/bin/python benchmarks/startup.py [--repeat 7]

Each command runs as its own process, the commands in turn (interleaved),
--repeat times; prints the median [min, max] in seconds and the load.
"""
import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

BIN = Path(sys.executable).parent
COMMANDS = {
    'pyg-schnet --help': [str(BIN / 'pyg-schnet'), '--help'],
    'pyg-schnet --version': [str(BIN / 'pyg-schnet'), '--version'],
    'pyg-schnet train --help': [str(BIN / 'pyg-schnet'), 'train', '--help'],
    'pyg-schnet train --epcohs 3': [str(BIN / 'pyg-schnet'), 'train',
                                    '--epcohs', '3'],
    'python -c "import torch"': [sys.executable, '-c', 'import torch'],
}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--repeat', type=int, default=7)
    args = parser.parse_args()
    times = {name: [] for name in COMMANDS}
    names = list(COMMANDS)
    for r in range(args.repeat):
        for name in names[r % len(names):] + names[:r % len(names)]:
            start = time.perf_counter()
            subprocess.run(COMMANDS[name], capture_output=True)
            times[name].append(time.perf_counter() - start)
    print(f'load average {os.getloadavg()[0]:.2f}; {os.cpu_count()} CPUs')
    for name, values in times.items():
        print(f'{name:<30} {statistics.median(values):.3f} s '
              f'[{min(values):.3f}, {max(values):.3f}]')


if __name__ == '__main__':
    main()
