"""Activation functions used by SchNet."""
import math

import torch
import torch.nn.functional as F
from torch import Tensor


def shifted_softplus(x: Tensor, threshold: float = 20.0) -> Tensor:
    r"""Functional form of :class:`ShiftedSoftplus`:
    :math:`\ln(0.5 e^{x} + 0.5) = \mathrm{softplus}(x) - \ln 2`, taken
    as :math:`x - \ln 2` for :math:`x >` :obj:`threshold`."""
    return F.softplus(x, threshold=threshold) - math.log(2.0)


class ShiftedSoftplus(torch.nn.Module):
    r"""The shifted softplus activation of SchNet from the
    `"SchNet: A continuous-filter convolutional neural network for modeling
    quantum interactions" <https://arxiv.org/abs/1706.08566>`_ paper

    .. math::
        \mathrm{ssp}(x) = \ln(0.5 e^{x} + 0.5)
        = \mathrm{softplus}(x) - \ln 2,

    so that :math:`\mathrm{ssp}(0) = 0` and the function is smooth
    (infinitely differentiable), which keeps forces and Hessians smooth.
    Above :obj:`threshold` it is computed as :math:`x - \ln 2` (off by
    less than :math:`e^{-\mathrm{threshold}}`): torch's default is 20, the
    original SchNet code's 14 (``tf.where(x < 14, log1p(exp(x)), x)``).

    Args:
        threshold (float, optional): See above. (default: :obj:`20.0`)

    Shapes:
        - **input:** any shape :math:`(*)`
        - **output:** same shape :math:`(*)`
    """
    def __init__(self, threshold: float = 20.0):
        super().__init__()
        self.threshold = float(threshold)

    def forward(self, x: Tensor) -> Tensor:
        return shifted_softplus(x, self.threshold)

    def __repr__(self) -> str:
        extra = '' if self.threshold == 20.0 else \
            f'threshold={self.threshold}'
        return f'{self.__class__.__name__}({extra})'
