"""Run by tests/test_train.py: two CPU processes (gloo) train a few steps
with DDP; every rank saves its final weights to OUT/rank{k}.pt."""
import sys
from pathlib import Path

import lightning.pytorch as pl
import torch
from torch_geometric.loader import DataLoader

from pyg_schnet.models import SchNet
from pyg_schnet.train.module import AtomisticTask

sys.path.insert(0, str(Path(__file__).parent))
from conftest import emt_molecules  # noqa: E402


class SaveWeights(pl.Callback):
    def __init__(self, out: Path):
        self.out = out

    def on_train_end(self, trainer, task):
        state = {k: v.detach().clone() for k, v in
                 task.model.state_dict().items()}
        torch.save({'state': state,
                    'backend': torch.distributed.get_backend(),
                    'world_size': trainer.world_size,
                    'steps': trainer.global_step},
                   self.out / f'rank{trainer.global_rank}.pt')


def main(out: Path) -> None:
    pl.seed_everything(0, verbose=False)
    data = emt_molecules(40)
    model = SchNet(hidden_channels=16, num_filters=16, num_interactions=2,
                   cutoff=4.0)
    torch.save({k: v.clone() for k, v in model.state_dict().items()},
               out / 'initial.pt')
    task = AtomisticTask(model, 'energy', forces=True, lr=1e-3)
    trainer = pl.Trainer(accelerator='cpu', devices=2, strategy='ddp',
                         max_epochs=2, logger=False,
                         enable_checkpointing=False,
                         enable_progress_bar=False, inference_mode=False,
                         callbacks=[SaveWeights(out)],
                         num_sanity_val_steps=0)
    trainer.fit(task, DataLoader(data[:32], batch_size=4, shuffle=True),
                DataLoader(data[32:], batch_size=4))


if __name__ == '__main__':
    main(Path(sys.argv[1]))
