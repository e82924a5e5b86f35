"""pyg_schnet: SchNet and DTNN for PyTorch Geometric.

Units everywhere: Å, eV, eV/Å, eV/Å³, fs, amu.
"""
import warnings

with warnings.catch_warnings():
    # PyG 2.8 no longer calls torch-cluster and says so when it is installed;
    # pyg_schnet does call it (for radius graphs), so the note misleads here.
    warnings.filterwarnings('ignore', message=".*'torch-cluster' is no "
                            'longer necessary.*', category=DeprecationWarning)
    import torch_geometric  # noqa: F401

__version__ = '0.1.0'
