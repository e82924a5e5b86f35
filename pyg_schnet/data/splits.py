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
