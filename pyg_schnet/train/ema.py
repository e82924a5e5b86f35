"""Exponential moving average of the weights, with a warm-up."""
from typing import Any, Callable, List

import torch
from lightning.pytorch.callbacks import EMAWeightAveraging
from torch import Tensor


def warmup_ema_fn(decay: float
                  ) -> Callable[[List[Tensor], List[Tensor], Tensor], None]:
    r"""The update of an exponential moving average whose decay grows
    with the number :math:`n` of updates so far,

    .. math::
        W^{\mathrm{EMA}} \leftarrow d_n W^{\mathrm{EMA}} + (1 - d_n) W,
        \qquad d_n = \min\left(d, \frac{1 + n}{10 + n}\right),

    as in TensorFlow's ``ExponentialMovingAverage(num_updates=...)``.
    Without the warm-up, the average keeps a weight :math:`d^{\,n}` on the
    first step's weights: 37 % after 100 steps at :math:`d = 0.99`, which
    is 10 epochs of a 320-structure training set; validation then scores a
    mixture with the barely trained network.

    The returned function updates lists of tensors in place (the
    ``multi_avg_fn`` of :class:`torch.optim.swa_utils.AveragedModel`):
    one multi-tensor kernel for all weights of a device and dtype, and
    :math:`n` stays on the device (no host synchronisation).
    """
    if not 0.0 <= decay <= 1.0:
        raise ValueError(f'the EMA decay must be in [0, 1], got {decay}')

    @torch.no_grad()
    def update(averages: List[Tensor], currents: List[Tensor],
               num_averaged: Tensor) -> None:
        n = torch.as_tensor(num_averaged, dtype=torch.float64,
                            device=averages[0].device)
        d = ((1 + n) / (10 + n)).clamp(max=decay).to(averages[0].dtype)
        # d a + (1 - d) w, with the multi-tensor ops of torch >= 2.1
        torch._foreach_mul_(averages, d)
        torch._foreach_add_(averages, torch._foreach_mul(currents, 1 - d))

    return update


class WarmupEMA(EMAWeightAveraging):
    r"""Lightning's :class:`EMAWeightAveraging` (updated after every
    optimiser step; validation, checkpoints and the saved model use the
    average) with the warm-up of :func:`warmup_ema_fn`, kept on the
    training device.

    Lightning's class makes its average in :meth:`setup`, before the model
    is moved to the GPU, so its average lives on the CPU and every step
    copies all weights off the GPU; here it is made on the device the
    weights train on (:obj:`trainer.strategy.root_device`)."""

    def __init__(self, decay: float = 0.99, **kwargs: Any):
        super().__init__(decay=decay, **kwargs)
        self._kwargs.pop('avg_fn', None)
        self._kwargs['multi_avg_fn'] = warmup_ema_fn(decay)

    def setup(self, trainer, pl_module, stage: str) -> None:
        if stage == 'fit' and self._device is None:
            self._device = trainer.strategy.root_device
        super().setup(trainer, pl_module, stage)

    @property
    def state_key(self) -> str:
        # The key of Lightning's class: checkpoints written before the
        # warm-up existed resume with their update count.
        return 'EMAWeightAveraging'
