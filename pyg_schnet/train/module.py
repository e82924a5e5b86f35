"""The Lightning module that trains an :class:`AtomisticModel`."""
from typing import Dict

import lightning.pytorch as pl
import torch
from torch import Tensor
from torch_geometric.data import Batch

from pyg_schnet.models import AtomisticModel
from pyg_schnet.train.loss import EnergyForceLoss


class AtomisticTask(pl.LightningModule):
    r"""Trains a SchNet/DTNN model on one per-graph target (and forces):
    the :class:`~pyg_schnet.train.EnergyForceLoss`, Adam(W) with
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
    """
    def __init__(self, model: AtomisticModel, target: str,
                 forces: bool = False, rho: float = 0.01, lr: float = 5e-4,
                 weight_decay: float = 0.0, lr_factor: float = 0.5,
                 lr_patience: int = 10, min_lr: float = 1e-6):
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

    def forward(self, batch: Batch):
        return self.model(batch, forces=self.forces)

    def _step(self, batch: Batch, stage: str) -> Tensor:
        out = self(batch)
        energy, forces = (out, None) if not self.forces else out
        reference = batch[self.target]
        losses = self.loss_fn(energy, reference, forces,
                              batch.forces if self.forces else None)
        size = batch.num_graphs
        self.log(f'{stage}_loss', losses['loss'], batch_size=size,
                 on_step=False, on_epoch=True, prog_bar=True, sync_dist=True)
        error = (energy.detach() - reference.view(-1).to(energy.dtype))
        self._log_errors(stage, self.target, error, size)
        if forces is not None:
            self._log_errors(stage, 'forces',
                             (forces.detach() - batch.forces).flatten(),
                             forces.numel())
        return losses['loss']

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
        energy = out if not self.forces else out[0]
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


