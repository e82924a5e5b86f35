"""Where the time of a QM9 training step goes, on the CPU or a GPU.

    .venv/bin/python benchmarks/train_step.py [--device cuda] [--steps 60]

One process, nothing else running. QM9 U0, batches of 32 molecules, the
pretrained models' SchNet (F = 128, T = 6, cutoff 5 Å) and DTNN. For each
model, milliseconds per batch (median [min, max] over --steps batches,
each timed alone with the device synchronised):

* ``collate``: the DataLoader making one batch (CPU, Python);
* ``to device``: moving it to the device;
* ``step``: forward (radius graph inside the model), loss, backward and
  Adam on a batch already on the device;
* ``step + EMA``: the same plus the warm-up EMA of the weights the
  trainer keeps (``pyg_schnet.train.ema``);
* ``syncs/step``: host-device synchronisations in one ``step + EMA``
  (``torch.cuda.set_sync_debug_mode``; GPU only);
* ``trainer``: one epoch of ``pyg_schnet.train.train`` (Lightning, the
  code path of ``pyg-schnet train``; second of two epochs, validation
  of 320 molecules included) divided by its batches;

and the inference throughput (molecules per second) on batches of 100
molecules, energy only and with forces.
"""
import argparse
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import torch
from torch_geometric.loader import DataLoader

from pyg_schnet.data import QM9
from pyg_schnet.models import DTNN, SchNet
from pyg_schnet.train import TrainConfig, train
from pyg_schnet.train.config import default_data_root
from pyg_schnet.train.ema import warmup_ema_fn
from pyg_schnet.train.hardware import describe_hardware
from pyg_schnet.train.history import read_history


def _sync(device):
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def _timed(fn, device, reps):
    times = []
    for _ in range(reps):
        _sync(device)
        t = time.perf_counter()
        fn()
        _sync(device)
        times.append(1e3 * (time.perf_counter() - t))
    return times


def _fmt(times):
    return (f'{statistics.median(times):8.2f} [{min(times):.2f}, '
            f'{max(times):.2f}]')


def profile(name, model, subset, device, steps, report):
    loader = DataLoader(subset, batch_size=32, shuffle=True)
    it = iter(loader)
    report(name, 'collate', _timed(lambda: next(it), device, steps))
    batches = list(DataLoader(subset[:32 * steps], batch_size=32))
    moved = []
    k = iter(batches)
    report(name, 'to device',
           _timed(lambda: moved.append(next(k).to(device)), device, steps))
    model = model.to(device)
    opt = torch.optim.Adam(model.parameters(), lr=5e-4)
    average = torch.optim.swa_utils.AveragedModel(
        model, multi_avg_fn=warmup_ema_fn(0.99), use_buffers=False)
    j = iter(range(10 ** 9))

    def step(ema=False):
        b = moved[next(j) % len(moved)]
        opt.zero_grad(set_to_none=True)
        energy = model(b)
        loss = (energy - b.U0.view(-1)).pow(2).mean()
        loss.backward()
        opt.step()
        if ema:
            average.update_parameters(model)

    _timed(step, device, 5)  # warm-up
    report(name, 'step', _timed(step, device, steps))
    report(name, 'step + EMA', _timed(lambda: step(True), device, steps))
    if device.type == 'cuda':
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter('always')
            torch.cuda.set_sync_debug_mode('warn')
            step(True)
            torch.cuda.set_sync_debug_mode(0)
        syncs = [w for w in caught if 'synchroniz' in str(w.message)]
        where = sorted({f'{Path(w.filename).name}:{w.lineno}'
                        for w in syncs})
        print(f'{name:7s} syncs/step {len(syncs)}  at {", ".join(where)}')
    model.eval()
    big = [b.to(device) for b in DataLoader(subset, batch_size=100)][:10]
    for forces in (False, True):
        times = []
        for b in big + big:
            _sync(device)
            t = time.perf_counter()
            if forces:
                model(b, forces=True)
            else:
                with torch.no_grad():
                    model(b)
            _sync(device)
            times.append(time.perf_counter() - t)
        rate = 100 / statistics.median(times[len(big):])
        print(f'{name:7s} inference, batches of 100, '
              f'{"energy + forces" if forces else "energy only"}: '
              f'{rate:,.0f} molecules/s')
    model.train()


def trainer_epoch(name, model_name, device, n_train, root, ema):
    with tempfile.TemporaryDirectory() as tmp:
        config = TrainConfig(root=root, n_train=n_train, n_val=320,
                             n_test=320, epochs=2, max_time=None,
                             model=model_name, device=device.type,
                             ema_decay=0.99 if ema else None,
                             run_dir=str(Path(tmp) / 'run'), progress=False)
        train(config, log=lambda *a: None)
        rows = read_history(Path(tmp) / 'run' / 'metrics.csv')
    ms = 1e3 * rows[-1]['seconds'] / -(-n_train // 32)
    print(f'{name:7s} trainer ({"EMA" if ema else "no EMA"}): '
          f'{ms:8.2f} ms per batch (epoch 2 of 2, validation included)')


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--device', default='auto')
    parser.add_argument('--steps', type=int, default=60)
    parser.add_argument('--trainer-batches', type=int, default=100)
    parser.add_argument('--root', default=default_data_root())
    args = parser.parse_args()
    device = torch.device('cuda' if args.device == 'auto' and
                          torch.cuda.is_available() else
                          ('cpu' if args.device == 'auto' else args.device))
    print(describe_hardware('gpu' if device.type == 'cuda' else 'cpu'),
          f'torch {torch.__version__}, {torch.get_num_threads()} threads')
    dataset = QM9(str(Path(args.root) / 'qm9'))
    perm = torch.randperm(len(dataset),
                          generator=torch.Generator().manual_seed(0))
    subset = dataset[perm[:32 * max(args.steps, 10)]]

    def report(name, what, times):
        print(f'{name:7s} {what:11s} ms/batch {_fmt(times)}')

    torch.manual_seed(0)
    for name, model in (('SchNet', SchNet(cutoff=5.0)), ('DTNN', DTNN())):
        profile(name, model, subset, device, args.steps, report)
    for name, key in (('SchNet', 'schnet'), ('DTNN', 'dtnn')):
        for ema in (True, False):
            trainer_epoch(name, key, device, 32 * args.trainer_batches,
                          args.root, ema)


if __name__ == '__main__':
    main()
