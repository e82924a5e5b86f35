"""pyg_schnet: SchNet and DTNN for PyTorch Geometric.

Units everywhere: Å, eV, eV/Å, eV/Å³, fs, amu.
"""
import warnings

# PyG 2.8 no longer calls torch-cluster and says so when it is installed;
# pyg_schnet does call it (for radius graphs), so the note misleads here.
# (A filter, not an import: `import pyg_schnet` stays free of torch, so the
# command line answers --help at once.)
warnings.filterwarnings('ignore', message=".*'torch-cluster' is no "
                        'longer necessary.*', category=DeprecationWarning)

__version__ = '0.1.0'
