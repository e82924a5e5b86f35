"""Reproducible random train/validation/test splits."""
from typing import Optional, Tuple

import torch
from torch import Tensor


def random_split(num_items: int, num_train: int, num_val: int,
                 num_test: Optional[int] = None,
                 seed: int = 0) -> Tuple[Tensor, Tensor, Tensor]:
    r"""Splits :obj:`range(num_items)` at random: a permutation from
    :func:`torch.randperm` with a :class:`torch.Generator` seeded with
    :obj:`seed`; its first :obj:`num_train` entries are the training set,
    the next :obj:`num_val` the validation set, and the next
    :obj:`num_test` (default: all the rest) the test set. The same
    arguments give the same split on every machine and torch version that
    keeps :func:`torch.randperm`'s CPU generator.

    Returns:
        Three index tensors :obj:`(train, val, test)`.
    """
    rest = num_items - num_train - num_val
    num_test = rest if num_test is None else num_test
    for name, value in (('num_train', num_train), ('num_val', num_val),
                        ('num_test', num_test)):
        if value < 0 and not (name == 'num_test' and rest < 0):
            raise ValueError(f"'{name}' must not be negative (got {value})")
    if num_train + num_val + max(num_test, 0) > num_items:
        raise ValueError(f'the split asks for {num_train} + {num_val} + '
                         f'{max(num_test, 0)} items but the dataset has '
                         f'{num_items}')
    perm = torch.randperm(num_items,
                          generator=torch.Generator().manual_seed(seed))
    train = perm[:num_train]
    val = perm[num_train:num_train + num_val]
    test = perm[num_train + num_val:num_train + num_val + num_test]
    return train, val, test


#: The positions in QM9's seeded permutation that hold its fixed test set.
QM9_TEST_BLOCK = (2000, 12000)


def qm9_split(num_items: int, num_train: int, num_val: int,
              num_test: int, seed: int = 0
              ) -> Tuple[Tensor, Tensor, Tensor]:
    r"""The QM9 split with a fixed test set: in the permutation of
    :func:`random_split` (same seed), validation molecules are taken from
    entries 0..1999, test molecules from entries 2000..11999 and training
    molecules from entry 12000 on. Every training-set size (up to 118,831)
    is then tested on the same molecules, and no model trained this way
    (nor the pretrained models, trained on entries 12000..121999) has seen
    them. For 1,000 / 1,000 / 10,000 the test set is the one of
    :obj:`random_split(130831, 1000, 1000, 10000, seed=0)`.

    Raises:
        ValueError: if the sizes do not fit these blocks (at most 2,000
            validation and 10,000 test molecules).
    """
    start, stop = QM9_TEST_BLOCK
    if not (0 < num_val <= start and 0 < num_test <= stop - start):
        raise ValueError(f'the QM9 split takes at most {start} validation '
                         f'and {stop - start} test molecules (got {num_val} '
                         f'and {num_test})')
    if not 0 < num_train <= num_items - stop:
        raise ValueError(f'the QM9 split has {num_items - stop} training '
                         f'molecules at most (got {num_train})')
    perm = torch.randperm(num_items,
                          generator=torch.Generator().manual_seed(seed))
    return (perm[stop:stop + num_train], perm[:num_val],
            perm[start:start + num_test])
