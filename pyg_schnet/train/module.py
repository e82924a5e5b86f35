"""The Lightning module that trains an :class:`AtomisticModel`."""
from typing import Dict, Optional

import lightning.pytorch as pl
import torch
from torch import Tensor
from torch_geometric.data import Batch

from pyg_schnet.models import AtomisticModel
from pyg_schnet.train.loss import EnergyForceLoss
from pyg_schnet.train.properties import compared


class AtomisticTask(pl.LightningModule):
    r"""Trains a SchNet/DTNN model on one per-graph target (and forces),
    and its property heads on their labels: the loss

    .. math::
        \mathcal{L} = w_0\, \mathcal{L}_{EF} + \sum_p w_p\,
        \frac{\overline{\|\hat y_p - y_p\|^2}}{s_p^2},

    :math:`\mathcal{L}_{EF}` the :class:`~pyg_schnet.train.EnergyForceLoss`
    and, per property :math:`p` (:data:`~pyg_schnet.train.properties.
    PROPERTY_TARGETS`), the mean squared error over graphs (summed over
    components) divided by the training set's mean square label
    :math:`s_p^2`, so that weights are comparable; Adam(W) with
    :class:`~torch.optim.lr_scheduler.ReduceLROnPlateau` on the validation
    loss, and MAE/RMSE metrics in the target's unit (and eV/Å for forces).

    The model stays a plain :class:`torch.nn.Module` (:attr:`model`);
    Lightning only drives the loop, so DDP over GPUs or nodes comes from
    Lightning's strategies.

    Args:
        model (AtomisticModel): The model, with its standardisation and
            reference energies already set.
        target (str): Name of the per-graph target field, e.g.
            :obj:`"energy"` or :obj:`"U0"`.
        forces (bool, optional): Train on :obj:`data.forces` too (eV/Å).
            (default: :obj:`False`)
        rho (float, optional): Energy weight of the loss with forces.
            (default: :obj:`0.01`)
        lr (float, optional): Learning rate. (default: :obj:`5e-4`)
        weight_decay (float, optional): AdamW weight decay (0: Adam).
            (default: :obj:`0.0`)
        lr_factor (float, optional): Factor of the plateau scheduler.
            (default: :obj:`0.5`)
        lr_patience (int, optional): Epochs without improvement before the
            learning rate drops. (default: :obj:`10`)
        min_lr (float, optional): Lowest learning rate. (default: :obj:`1e-6`)
        properties (dict, optional): Weight :math:`w_p` of each property
            target trained by a head, e.g. :obj:`{"mu": 1.0}`.
            (default: :obj:`None`, none)
        scales (dict, optional): :math:`s_p` of each property in its unit
            (:func:`~pyg_schnet.train.properties.label_scale`).
            (default: :obj:`None`, 1)
        energy_weight (float, optional): :math:`w_0`; :obj:`0` trains the
            heads alone. (default: :obj:`1.0`)
    """
    def __init__(self, model: AtomisticModel, target: str,
                 forces: bool = False, rho: float = 0.01, lr: float = 5e-4,
                 weight_decay: float = 0.0, lr_factor: float = 0.5,
                 lr_patience: int = 10, min_lr: float = 1e-6,
                 properties: Optional[Dict[str, float]] = None,
                 scales: Optional[Dict[str, float]] = None,
                 energy_weight: float = 1.0):
        super().__init__()
        self.model = model
        self.target = target
        self.forces = forces
        self.loss_fn = EnergyForceLoss(rho)
        self.lr = lr
        self.weight_decay = weight_decay
        self.lr_factor = lr_factor
        self.lr_patience = lr_patience
        self.min_lr = min_lr
        self.properties = dict(properties or {})
        self.scales = {name: float((scales or {}).get(name, 1.0))
                       for name in self.properties}
        self.energy_weight = float(energy_weight)

    def forward(self, batch: Batch):
        if self.properties:
            return self.model.compute(batch, forces=self.forces)
        return self.model(batch, forces=self.forces)

    def _step(self, batch: Batch, stage: str) -> Tensor:
        out = self(batch)
        if self.properties:
            energy, forces = out['energy'], out.get('forces')
        else:
            energy, forces = (out, None) if not self.forces else out
        reference = batch[self.target]
        losses = self.loss_fn(energy, reference, forces,
                              batch.forces if self.forces else None)
        size = batch.num_graphs
        loss = losses['loss'] if not self.properties else \
            self.energy_weight * losses['loss']
        for name, weight in self.properties.items():
            predicted, label = compared(name, out, batch[name])
            error = predicted - label
            loss = loss + weight * error.pow(2).sum(-1).mean() / \
                self.scales[name] ** 2
            self._log_errors(stage, name, error.detach().flatten(),
                             error.numel())
        self.log(f'{stage}_loss', loss, batch_size=size,
                 on_step=False, on_epoch=True, prog_bar=True, sync_dist=True)
        error = (energy.detach() - reference.view(-1).to(energy.dtype))
        self._log_errors(stage, self.target, error, size)
        if forces is not None:
            self._log_errors(stage, 'forces',
                             (forces.detach() - batch.forces).flatten(),
                             forces.numel())
        return loss

    def _log_errors(self, stage: str, name: str, error: Tensor,
                    size: int) -> None:
        # Epoch means of |e| and e² are exact over batches (weighted by
        # size); the RMSE is the square root of the latter at epoch end.
        self.log(f'{stage}_{name}_mae', error.abs().mean(), batch_size=size,
                 on_step=False, on_epoch=True, sync_dist=True,
                 prog_bar=stage == 'val')
        self.log(f'{stage}_{name}_mse', error.pow(2).mean(), batch_size=size,
                 on_step=False, on_epoch=True, sync_dist=True)

    def training_step(self, batch: Batch, batch_idx: int) -> Tensor:
        return self._step(batch, 'train')

    def validation_step(self, batch: Batch, batch_idx: int) -> Tensor:
        return self._step(batch, 'val')

    def test_step(self, batch: Batch, batch_idx: int) -> Tensor:
        return self._step(batch, 'test')

    def predict_step(self, batch: Batch, batch_idx: int) -> Dict[str, Tensor]:
        out = self(batch)
        energy = out['energy'] if self.properties else \
            (out if not self.forces else out[0])
        return {'energy': energy.detach(),
                'target': batch[self.target].view(-1)}

    def configure_optimizers(self):
        cls = torch.optim.AdamW if self.weight_decay > 0 else torch.optim.Adam
        optimizer = cls(self.model.parameters(), lr=self.lr,
                        weight_decay=self.weight_decay)
        scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, mode='min', factor=self.lr_factor,
            patience=self.lr_patience, min_lr=self.min_lr)
        return {'optimizer': optimizer,
                'lr_scheduler': {'scheduler': scheduler,
                                 'monitor': 'val_loss', 'interval': 'epoch'}}


