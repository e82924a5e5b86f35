"""The energy/force loss of SchNet."""
from typing import Dict, Optional

import torch
from torch import Tensor


class EnergyForceLoss(torch.nn.Module):
    r"""The combined loss of K. T. Schütt's thesis (and the SchNet papers)

    .. math::
        \mathcal{L} = \rho\, \frac{1}{B}\sum_{b=1}^{B} (E_b - \hat{E}_b)^2 +
        \frac{1}{N}\sum_{i=1}^{N} \left\| \mathbf{F}_i +
        \frac{\partial \hat{E}}{\partial \mathbf{r}_i} \right\|^2,

    a mean over the :math:`B` graphs and :math:`N` atoms of a batch. Without
    reference forces it is the energy term alone, with :math:`\rho = 1`.
    Energies in eV and forces in eV/Å give a loss in eV² (the force term in
    (eV/Å)²).

    Args:
        rho (float, optional): Weight :math:`\rho` of the energy term when
            forces are trained too. (default: :obj:`0.01`)
    """
    def __init__(self, rho: float = 0.01):
        super().__init__()
        if rho < 0:
            raise ValueError(f"'rho' must not be negative (got {rho})")
        self.rho = float(rho)

    def forward(self, energy: Tensor, energy_ref: Tensor,
                forces: Optional[Tensor] = None,
                forces_ref: Optional[Tensor] = None) -> Dict[str, Tensor]:
        energy_ref = energy_ref.view(-1).to(energy.dtype)
        energy_mse = (energy - energy_ref).pow(2).mean()
        if forces is None or forces_ref is None:
            return {'loss': energy_mse, 'energy_mse': energy_mse}
        force_mse = (forces - forces_ref.to(forces.dtype)).pow(2).sum(-1)
        force_mse = force_mse.mean()
        loss = self.rho * energy_mse + force_mse
        return {'loss': loss, 'energy_mse': energy_mse,
                'force_mse': force_mse}

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(rho={self.rho})'
