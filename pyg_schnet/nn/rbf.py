"""Radial basis expansions of interatomic distances."""
import math
from typing import Optional

import torch
from torch import Tensor


class GaussianRBF(torch.nn.Module):
    r"""Expands distances in Gaussians, as in the
    `"SchNet: A continuous-filter convolutional neural network for modeling
    quantum interactions" <https://arxiv.org/abs/1706.08566>`_ and
    `"Quantum-chemical insights from deep tensor neural networks"
    <https://www.nature.com/articles/ncomms13890>`_ papers

    .. math::
        e_k(d) = \exp\left(-\frac{(d - \mu_k)^2}{2\sigma^2}\right),
        \qquad \mu_k = \mu_{\min} + k\,\Delta\mu,\quad
        k = 0, \ldots, K - 1,

    with the centres :math:`\mu_k` spaced evenly on
    :math:`[\mu_{\min}, \mu_{\max}]` (:math:`\Delta\mu =
    (\mu_{\max} - \mu_{\min}) / (K - 1)`) and, by default, the width equal
    to the spacing, :math:`\sigma = \Delta\mu` (as SchNetPack does).

    The papers' own widths are reachable with :obj:`width`: the 2017 SchNet
    paper writes :math:`e_k(d) = \exp(-\gamma (d - \mu_k)^2)` with
    :math:`\gamma = 10` Å\ :sup:`-2` and centres every 0.1 Å, i.e.
    :math:`\sigma = 1/\sqrt{2\gamma} \approx 0.224` Å; the original DTNN
    code uses :math:`K = 100` centres on :math:`[0, 20]` Å (spacing
    :math:`20/99` Å) with :math:`\sigma = 0.2` Å.

    Args:
        start (float, optional): First centre :math:`\mu_{\min}` in Å.
            (default: :obj:`0.0`)
        stop (float, optional): Last centre :math:`\mu_{\max}` in Å, usually
            the cutoff. (default: :obj:`5.0`)
        num_gaussians (int, optional): Number of Gaussians :math:`K`
            (at least 2). (default: :obj:`50`)
        width (float, optional): The width :math:`\sigma` in Å, or
            :obj:`None` for the spacing :math:`\Delta\mu`.
            (default: :obj:`None`)

    Shapes:
        - **input:** distances :math:`(E)` in Å
        - **output:** expansion :math:`(E, K)`
    """
    def __init__(self, start: float = 0.0, stop: float = 5.0,
                 num_gaussians: int = 50, width: Optional[float] = None):
        super().__init__()
        if isinstance(num_gaussians, bool) or \
                not isinstance(num_gaussians, int) or num_gaussians < 2:
            raise ValueError(f"'num_gaussians' must be an integer of at "
                             f"least 2 (got {num_gaussians!r})")
        if not (math.isfinite(start) and math.isfinite(stop)):
            raise ValueError(f"'start' and 'stop' must be finite (got "
                             f"{start} Å, {stop} Å)")
        if not stop > start:
            raise ValueError(f"'stop' ({stop} Å) must exceed 'start' "
                             f"({start} Å)")
        if width is not None and not (math.isfinite(width) and width > 0):
            raise ValueError(f"'width' must be a positive number of Å "
                             f"(got {width})")
        self.start = float(start)
        self.stop = float(stop)
        self.num_gaussians = int(num_gaussians)
        # Built in float64 so that a float64 model gets exact centres.
        offset = torch.linspace(self.start, self.stop, self.num_gaussians,
                                dtype=torch.float64)
        self.spacing = (self.stop - self.start) / (self.num_gaussians - 1)
        self.custom_width = width is not None
        self.width = float(width) if width is not None else self.spacing
        # Derived from the hyper-parameters, so not part of the state dict.
        self.register_buffer('offset', offset, persistent=False)

    @classmethod
    def from_spacing(cls, start: float, stop: float, spacing: float,
                     width: Optional[float] = None) -> 'GaussianRBF':
        r"""Gaussians every :obj:`spacing` Å from :obj:`start` to
        :obj:`stop` (both included; :obj:`stop` is rounded to the grid),
        of width :obj:`width` (default: the spacing)."""
        if not (math.isfinite(spacing) and spacing > 0):
            raise ValueError(f"'spacing' must be positive (got {spacing} Å)")
        num = int(round((stop - start) / spacing)) + 1
        return cls(start, start + (num - 1) * spacing, num, width)

    def forward(self, distances: Tensor) -> Tensor:
        r"""In float32, exponents below :math:`-87` (Gaussians below
        1.2e-38, float32's smallest normal number) are taken at :math:`-87`:
        a change below 1.2e-38 that avoids the 7× slower path of
        :func:`torch.exp` for subnormal and underflowing results."""
        diff = distances.unsqueeze(-1) - self.offset.to(distances.dtype)
        exponent = (-0.5 / self.width**2) * diff.pow(2)
        if exponent.dtype == torch.float32:
            exponent = exponent.clamp(min=-87.0)
        return torch.exp(exponent)

    def __repr__(self) -> str:
        width = f', width={self.width}' if self.custom_width else ''
        return (f'{self.__class__.__name__}(start={self.start}, '
                f'stop={self.stop}, num_gaussians={self.num_gaussians}'
                f'{width})')
