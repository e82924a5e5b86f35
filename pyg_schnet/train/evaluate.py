"""Test metrics of a trained model, and the closing summary of a run."""
from typing import Any, Dict, Optional

import torch
from torch_geometric.loader import DataLoader

from pyg_schnet.models import AtomisticModel

#: "Chemical accuracy", 1 kcal/mol, in eV.
CHEMICAL_ACCURACY_EV = 0.043


def evaluate_model(model: AtomisticModel, loader: DataLoader, target: str,
                   forces: bool = False,
                   device: Optional[torch.device] = None) -> Dict[str, Any]:
    r"""MAE and RMSE of :obj:`model` on :obj:`loader` for :obj:`target` (in
    its unit) and, with :obj:`forces`, for force components (eV/Å). Also
    returns the predicted and reference values, the atom counts and, for a
    model with atom references, their sum per structure (for parity
    plots)."""
    device = device or next(model.parameters()).device
    model.eval()
    predicted, reference, offset, counts = [], [], [], []
    force_pred, force_ref = [], []
    for batch in loader:
        batch = batch.to(device)
        if model.use_atomref:  # sum of reference energies per structure
            offset.append(torch.zeros(batch.num_graphs, dtype=torch.float64)
                          .index_add_(0, batch.batch.cpu(),
                                      model.atomref[batch.z].cpu()))
        if forces:
            energy, force = model(batch, forces=True)
            force_pred.append(force.detach().double().cpu())
            force_ref.append(batch.forces.detach().double().cpu())
        else:
            with torch.no_grad():
                energy = model(batch)
        predicted.append(energy.detach().double().cpu())
        reference.append(batch[target].view(-1).double().cpu())
        counts.append(torch.bincount(batch.batch.cpu(),
                                     minlength=batch.num_graphs))
    if not predicted:
        raise ValueError('nothing to evaluate: the set is empty')
    predicted, reference = torch.cat(predicted), torch.cat(reference)
    error = predicted - reference
    out: Dict[str, Any] = {
        'count': int(error.numel()),
        f'{target}_mae': float(error.abs().mean()),
        f'{target}_rmse': float(error.pow(2).mean().sqrt()),
        'predicted': predicted.tolist(), 'reference': reference.tolist(),
        'num_atoms': torch.cat(counts).tolist(),
        'offset': torch.cat(offset).tolist() if offset else None}
    if forces:
        fp, fr = torch.cat(force_pred), torch.cat(force_ref)
        ferr = (fp - fr).flatten()
        out['forces_mae'] = float(ferr.abs().mean())
        out['forces_rmse'] = float(ferr.pow(2).mean().sqrt())
        out['forces_predicted'] = fp.flatten().tolist()
        out['forces_reference'] = fr.flatten().tolist()
    return out


def is_molecular_energy(results: Dict[str, Any]) -> bool:
    r"""Whether chemical accuracy (1 kcal/mol per molecule) is a meaningful
    yardstick: energies in eV of molecules (QM9's U0/U/H/G, or molecular
    files), not of periodic cells or orbital energies."""
    return results.get('unit') == 'eV' and \
        results.get('target') in ('U0', 'U', 'H', 'G', 'energy') and \
        not results.get('periodic', False)


def summary(results: Dict[str, Any]) -> str:
    r"""The closing lines of a run: test MAE (next to chemical accuracy for
    molecular energies), forces, epochs and time."""
    target, unit = results['target'], results['unit']
    stop = results.get('stopped_by')
    lines = [f"test {target} MAE: {results['test_mae']:.4f} {unit}, RMSE: "
             f"{results['test_rmse']:.4f} {unit} on {results['test_count']} "
             f"structures (best epoch {results['epochs']} of "
             f"{results['epochs_run']} trained, "
             f"{results['train_minutes']:.1f} min of training"
             + (f', stopped by {stop}' if stop else '') + ')']
    if is_molecular_energy(results):
        ratio = results['test_mae'] / CHEMICAL_ACCURACY_EV
        lines.append(f'chemical accuracy is {CHEMICAL_ACCURACY_EV} eV '
                     f'(1 kcal/mol per molecule): the test MAE is '
                     f'{ratio:.1f}x that')
    if 'test_forces_mae' in results:
        lines.append(f"test forces MAE: {results['test_forces_mae']:.4f} "
                     f'eV/Å')
    return '\n'.join(lines)
