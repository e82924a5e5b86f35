"""The split of the pretrained QM9 models: its test set is exactly the test
set of the README's main job, so both can be compared on the same molecules.

    .venv/bin/python benchmarks/pretrained/make_split.py OUT.pt

The main job splits QM9 (130,831 molecules) with
``random_split(130831, 1000, 1000, 10000, seed=0)``: one permutation, whose
entries 0..999 are its training set, 1000..1999 its validation set and
2000..11999 its test set. The pretrained models use the same permutation:
test = entries 2000..11999 (the main job's 10,000 test molecules),
validation = entries 0..1999 (2,000 molecules), training = entries
12000..121999 (110,000 molecules, the thesis' training-set size).
"""
import sys

from pyg_schnet.data.splits import qm9_split
from pyg_schnet.io import atomic_torch_save

NUM_QM9 = 130831


def pretrained_split() -> dict:
    r""":func:`pyg_schnet.data.qm9_split` with 110,000 / 2,000 /
    10,000 molecules."""
    train, val, test = qm9_split(NUM_QM9, 110000, 2000, 10000, seed=0)
    return {'train': train.clone(), 'val': val.clone(), 'test': test.clone()}


if __name__ == '__main__':
    atomic_torch_save(pretrained_split(), sys.argv[1])
