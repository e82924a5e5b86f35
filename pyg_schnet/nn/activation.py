"""Activation functions used by SchNet."""
import math

import torch
import torch.nn.functional as F
from torch import Tensor


def shifted_softplus(x: Tensor) -> Tensor:
    r"""Functional form of :class:`ShiftedSoftplus`:
    :math:`\ln(0.5 e^{x} + 0.5) = \mathrm{softplus}(x) - \ln 2`."""
    return F.softplus(x) - math.log(2.0)


class ShiftedSoftplus(torch.nn.Module):
    r"""The shifted softplus activation of SchNet from the
    `"SchNet: A continuous-filter convolutional neural network for modeling
    quantum interactions" <https://arxiv.org/abs/1706.08566>`_ paper

    .. math::
        \mathrm{ssp}(x) = \ln(0.5 e^{x} + 0.5)
        = \mathrm{softplus}(x) - \ln 2,

    so that :math:`\mathrm{ssp}(0) = 0` and the function is smooth
    (infinitely differentiable), which keeps forces and Hessians smooth.

    Shapes:
        - **input:** any shape :math:`(*)`
        - **output:** same shape :math:`(*)`
    """
    def forward(self, x: Tensor) -> Tensor:
        return shifted_softplus(x)

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}()'
