"""Smooth cutoff functions applied to interatomic distances."""
import math

import torch
from torch import Tensor


class _Cutoff(torch.nn.Module):
    r"""A function of distances with a cutoff radius :obj:`cutoff` (Å)."""
    def __init__(self, cutoff: float = 5.0):
        super().__init__()
        if not (math.isfinite(cutoff) and cutoff > 0):
            raise ValueError(f"'cutoff' must be a positive, finite number "
                             f"of Å (got {cutoff})")
        self.cutoff = float(cutoff)

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(cutoff={self.cutoff})'


class CosineCutoff(_Cutoff):
    r"""The cosine cutoff of Behler, used by SchNet's continuous-filter
    convolution (`"SchNet - a deep learning architecture for molecules and
    materials" <https://arxiv.org/abs/1712.06113>`_)

    .. math::
        f_c(d) = \begin{cases}
            \frac{1}{2}\left(\cos\left(\frac{\pi d}{r_c}\right) + 1\right)
            & d < r_c \\
            0 & d \geq r_c
        \end{cases}

    :math:`f_c` and its first derivative both vanish at :math:`d = r_c`, so an
    atom crossing the cutoff changes neither the energy nor the forces
    discontinuously. The mask matters: without it the cosine would rise
    again for :math:`d > r_c`.

    Args:
        cutoff (float, optional): Cutoff radius :math:`r_c` in Å.
            (default: :obj:`5.0`)

    Shapes:
        - **input:** distances :math:`(*)` in Å
        - **output:** cutoff values :math:`(*)`, dimensionless, in
          :math:`[0, 1]`
    """

    def forward(self, distances: Tensor) -> Tensor:
        values = 0.5 * (torch.cos(distances * (math.pi / self.cutoff)) + 1.0)
        return values * (distances < self.cutoff).to(distances.dtype)


class StepCutoff(_Cutoff):
    r"""No cutoff function, only the cutoff: the step

    .. math::
        f_c(d) = [d < r_c],

    as in the original SchNet code, whose filters are not damped with
    distance. Pairs at or beyond :math:`r_c` contribute nothing, so a graph
    built with a larger radius (a Verlet skin) gives the same result; the
    energy jumps where a pair crosses :math:`r_c` (choose :math:`r_c`
    beyond every distance that matters, as the original C20 models' 20 Å).

    Args:
        cutoff (float, optional): Cutoff radius :math:`r_c` in Å.
            (default: :obj:`5.0`)

    Shapes:
        - **input:** distances :math:`(*)` in Å
        - **output:** :math:`(*)`, 1 inside the cutoff and 0 beyond
    """

    def forward(self, distances: Tensor) -> Tensor:
        return (distances < self.cutoff).to(distances.dtype)

