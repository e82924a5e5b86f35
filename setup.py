"""Builds the fused CFConv operator (pyg_schnet/csrc/cfconv.cpp) with
torch's C++ extension tools when torch and a C++ compiler are there
(`pip install --no-build-isolation -e .`, as scripts/setup.sh does).
Without either, the package installs without it and runs the reference
path (pyg_schnet.nn.fused.fused_available() says which); everything else
is in pyproject.toml."""
import sys

from setuptools import setup
from setuptools.command.build_ext import build_ext

ext_modules = []
cmdclass = {}
try:
    from torch.utils.cpp_extension import BuildExtension, CppExtension
except ImportError:  # torch not importable in an isolated build
    print('pyg_schnet: torch is not importable here; the fused CFConv is '
          'not built (install with --no-build-isolation to build it)',
          file=sys.stderr)
else:
    class OptionalBuildExtension(BuildExtension):
        """Builds the operator; a missing or failing compiler leaves the
        package without it (the reference path), saying why."""
        def run(self):
            try:
                super().run()
            except Exception as error:  # noqa: BLE001
                print(f'pyg_schnet: the fused CFConv was not built '
                      f'({error}); the reference path will be used',
                      file=sys.stderr)

        def build_extension(self, ext):
            try:
                super().build_extension(ext)
            except Exception as error:  # noqa: BLE001
                print(f'pyg_schnet: the fused CFConv was not built '
                      f'({error}); the reference path will be used',
                      file=sys.stderr)

    ext_modules = [CppExtension(
        'pyg_schnet._cfconv', ['pyg_schnet/csrc/cfconv.cpp'],
        extra_compile_args=['-O3', '-fopenmp', '-std=c++17'],
        extra_link_args=['-fopenmp'])]
    cmdclass = {'build_ext': OptionalBuildExtension.with_options(
        use_ninja=False)}
    del build_ext

setup(ext_modules=ext_modules, cmdclass=cmdclass)
