"""Test metrics of a trained model, and the closing summary of a run."""
from typing import Any, Dict, Optional, Sequence

import torch
from torch_geometric.loader import DataLoader

from pyg_schnet.models import AtomisticModel

#: "Chemical accuracy", 1 kcal/mol, in eV.
CHEMICAL_ACCURACY_EV = 0.043


def evaluate_model(model: AtomisticModel, loader: DataLoader, target: str,
                   forces: bool = False,
                   device: Optional[torch.device] = None,
                   properties: Sequence[str] = ()) -> Dict[str, Any]:
    r"""MAE and RMSE of :obj:`model` on :obj:`loader` for :obj:`target` (in
    its unit) and, with :obj:`forces`, for force components (eV/Å). Also
    returns the predicted and reference values, the atom counts and, for a
    model with atom references, their sum per structure (for parity
    plots). Each of :obj:`properties` (trained by the model's heads,
    :data:`~pyg_schnet.train.properties.PROPERTY_TARGETS`) adds
    :obj:`NAME_mae` and :obj:`NAME_rmse` over its components, in its
    unit."""
    from pyg_schnet.train.properties import compared

    device = device or next(model.parameters()).device
    model.eval()
    predicted, reference, offset, counts = [], [], [], []
    force_pred, force_ref = [], []
    errors: Dict[str, list] = {name: [] for name in properties}
    for batch in loader:
        batch = batch.to(device)
        if model.use_atomref:  # sum of reference energies per structure
            offset.append(torch.zeros(batch.num_graphs, dtype=torch.float64)
                          .index_add_(0, batch.batch.cpu(),
                                      model.atomref[batch.z].cpu()))
        if properties:
            with torch.set_grad_enabled(forces):
                out = model.compute(batch, forces=forces)
            energy = out['energy']
            for name in properties:
                value, label = compared(name, out, batch[name])
                errors[name].append((value - label).detach().double().cpu())
            if forces:
                force_pred.append(out['forces'].detach().double().cpu())
                force_ref.append(batch.forces.detach().double().cpu())
        elif forces:
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
    for name, parts in errors.items():
        perr = torch.cat(parts).flatten()
        out[f'{name}_mae'] = float(perr.abs().mean())
        out[f'{name}_rmse'] = float(perr.pow(2).mean().sqrt())
    return out


def property_results(test: Dict[str, Any],
                     properties: Sequence[str]) -> Dict[str, Any]:
    r"""The test errors of the property heads for :obj:`results.json`: per
    property its MAE and RMSE in the package's unit and in the unit the
    literature quotes (Debye, bohr³, bohr²)."""
    from pyg_schnet.train.properties import PROPERTY_TARGETS

    out = {}
    for name in properties:
        target = PROPERTY_TARGETS[name]
        unit, factor = target.display
        out[name] = {'description': target.description, 'unit': target.unit,
                     'mae': test[f'{name}_mae'], 'rmse': test[f'{name}_rmse'],
                     'display_unit': unit,
                     'mae_display': test[f'{name}_mae'] * factor,
                     'rmse_display': test[f'{name}_rmse'] * factor}
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
    untrained = results.get('loss_weights', {}).get(target) == 0
    if untrained:
        lines[0] += (f' — {target} had loss weight 0: its readout was not '
                     f'trained, only the property heads were')
    elif is_molecular_energy(results):
        ratio = results['test_mae'] / CHEMICAL_ACCURACY_EV
        lines.append(f'chemical accuracy is {CHEMICAL_ACCURACY_EV} eV '
                     f'(1 kcal/mol per molecule): the test MAE is '
                     f'{ratio:.1f}x that')
    if 'test_forces_mae' in results:
        lines.append(f"test forces MAE: {results['test_forces_mae']:.4f} "
                     f'eV/Å')
    for name, values in results.get('properties', {}).items():
        lines.append(f"test {name} MAE: {values['mae']:.4f} "
                     f"{values['unit']} = {values['mae_display']:.4f} "
                     f"{values['display_unit']} ({values['description']}, "
                     f'head)')
    return '\n'.join(lines)


def evaluate_trained(model: AtomisticModel, metadata: Dict[str, Any],
                     paths=None, split: str = 'test',
                     dataset: Optional[str] = None,
                     batch_size: int = 64) -> Dict[str, Any]:
    r"""MAE/RMSE of a trained model on the :obj:`split` of its run (the
    split saved in the run folder :obj:`paths`, checked against the data's
    fingerprint) or on every structure of the file :obj:`dataset`.

    Returns:
        The :func:`evaluate_model` dict, with :obj:`target`, :obj:`unit`,
        :obj:`where` (what was evaluated), :obj:`forces` (whether forces
        were), :obj:`unseen` (structure indices with elements the model
        was not trained on, by element tuple) and :obj:`properties` (the
        property heads' errors, :func:`property_results`, for the labels
        the data has).

    Raises:
        ValueError, FileNotFoundError: naming what is missing or changed.
    """
    from pathlib import Path

    from pyg_schnet.data import AtomsDataset
    from pyg_schnet.train.config import TrainConfig
    from pyg_schnet.train.datasets import (
        dataset_fingerprint,
        load_dataset,
        load_split,
        read_split,
    )

    target = metadata.get('target', 'energy')
    if dataset:
        data = AtomsDataset(dataset)
        where = dataset
        if target not in data[0]:
            raise ValueError(f"{dataset} has no '{target}' labels to "
                             f'evaluate the model against')
    elif paths is not None:
        config = TrainConfig.load(paths.config)
        if config.dataset.lower() != 'qm9' and \
                not Path(config.dataset).exists():
            raise FileNotFoundError(
                f'the dataset of this run, {config.dataset}, does not exist '
                f'(moved?); evaluate on a file with --dataset')
        data, _ = load_dataset(config.dataset, config.root, target,
                               config.max_molecules)
        saved = read_split(paths.split).get('fingerprint')
        if saved is not None and saved != dataset_fingerprint(data, target):
            raise ValueError(f'{config.dataset} is not the dataset this run '
                             f'was trained on (it changed since)')
        sets = dict(zip(('train', 'val', 'test'),
                        load_split(paths.split, len(data)), strict=True))
        data = data[sets[split]]
        where = f'the {split} split of {config.dataset}'
    else:
        raise ValueError('give a run folder, or --dataset with a model file')
    forces = bool(metadata.get('forces')) and 'forces' in data[0]
    from pyg_schnet.train.properties import evaluable_properties
    properties = evaluable_properties(model, data[0]) \
        if metadata.get('properties') else []
    result = evaluate_model(model, DataLoader(data, batch_size=batch_size),
                            target, forces, properties=properties)
    result.update(target=target, unit=metadata.get('unit', ''),
                  where=where, forces=forces,
                  unseen=unseen_elements(model, data),
                  properties=property_results(result, properties))
    return result


def unseen_elements(model: AtomisticModel, structures) -> Dict[tuple, list]:
    r"""Which structures (indices) hold elements the model was not trained
    on, keyed by the tuple of those elements; empty when the model does
    not record its training elements."""
    trained = model.trained_elements
    bad: Dict[tuple, list] = {}
    if trained is None:
        return bad
    for k, data in enumerate(structures):
        unseen = tuple(sorted(set(data.z.tolist()) - set(trained)))
        if unseen:
            bad.setdefault(unseen, []).append(k)
    return bad
