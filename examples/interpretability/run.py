"""Looking inside trained models, in minutes on a CPU: the local chemical
potential of a hydrogen probe around N-formylformamide (with the
pretrained QM9 SchNet), the same molecule with its N-H hydrogen removed,
the atomic energies, and the element embeddings of a SchNet trained on EMT
energies and forces of fcc alloys.

    .venv/bin/python examples/interpretability/run.py [--out DIR]

Writes into --out (default ``runs/examples/interpretability``, which git
ignores); each stage is skipped when its output exists. Units: Å, eV.

Surface: the probe sits 1 Å beyond the van-der-Waals surface (Alvarez
radii). The thesis draws Omega on the level set sum_i |r - r_i| = 3.7 Å,
which is empty for this molecule (the smallest attainable sum is 12.5 Å,
at the geometric median); the van-der-Waals offset surface exists for
every molecule, follows its shape, and passes where a bonding partner or
a hydrogen-bond donor would sit.
"""
import argparse
import json
from pathlib import Path

import torch

from pyg_schnet import interpret
from pyg_schnet.cli import main as cli
from pyg_schnet.data import from_smiles
from pyg_schnet.io import atomic_write_text
from pyg_schnet.models import load_model, load_pretrained

SMILES = 'O=CNC=O'  # N-formylformamide
NH_HYDROGEN = 6  # from_smiles order: O0 C1 N2 C3 O4 H5 H6(on N) H7
METALS = ['Al', 'Ni', 'Cu', 'Pd', 'Ag', 'Pt', 'Au']


def potentials(out: Path) -> dict:
    model, card = load_pretrained('schnet-qm9-U0')
    model = model.double()
    data = from_smiles(SMILES, seed=0, dtype=torch.float64)
    assert int(data.z[NH_HYDROGEN]) == 1 and int(data.z[2]) == 7
    vacancy_at = data.pos[NH_HYDROGEN].clone()
    keep = torch.arange(data.num_nodes) != NH_HYDROGEN
    from ase import Atoms

    from pyg_schnet.data import from_ase
    without = from_ase(Atoms(numbers=data.z[keep].numpy(),
                             positions=data.pos[keep].numpy()),
                       torch.float64)
    summary = {'model': 'schnet-qm9-U0',
               'model_test_mae_eV': card['test_mae_eV']}
    points = {}
    for name, molecule in (('full', data), ('without_NH_hydrogen', without)):
        surface = interpret.vdw_surface(molecule, offset=1.0, density=6.0)
        omega = interpret.local_potential(model, molecule, surface)
        points[name] = (surface, omega)
        lowest = int(omega.argmin())
        nearest = int((molecule.pos - surface[lowest]).norm(dim=-1).argmin())
        from ase.data import chemical_symbols
        summary[name] = {
            'points': surface.size(0),
            'omega_min_eV': float(omega.min()),
            'omega_max_eV': float(omega.max()),
            'lowest_near': f'{chemical_symbols[int(molecule.z[nearest])]}'
                           f'{nearest}'}
        what = 'N-formylformamide' if name == 'full' else \
            'N-formylformamide without its N-H hydrogen'
        interpret.plot_potential(
            molecule, surface, omega, out / f'potential_{name}.png',
            f'{what}: H probe 1 Å beyond the vdW surface (schnet-qm9-U0)')
    # Omega near the vacancy: the probe points within 2.5 Å of where the
    # hydrogen was, on the surface of the molecule without it, against
    # the same neighbourhood on the surface of the full molecule.
    near = {}
    for name, (surface, omega) in points.items():
        mask = (surface - vacancy_at).norm(dim=-1) < 2.5
        near[name] = {'points': int(mask.sum()),
                      'omega_mean_eV': float(omega[mask].mean()),
                      'omega_min_eV': float(omega[mask].min())}
    summary['near_vacancy'] = near
    energies = interpret.atomic_energies(model, data)
    summary['atomic_energies_eV'] = energies.tolist()
    summary['energy_eV'] = float(energies.sum())
    interpret.plot_atomic_energies(
        data, energies, out / 'atomic_energies.png',
        'N-formylformamide: atomic energies minus free-atom references '
        '(schnet-qm9-U0)', reference=model.atomref)
    return summary


def embeddings(out: Path, alloys: int, epochs: int, max_time: float
               ) -> dict:
    data = out / 'emt_alloys.extxyz'
    if not data.exists():
        assert cli(['label', '--calculator', 'emt', '--alloys', str(alloys),
                    '--properties', 'energy', 'forces', '--out',
                    str(data)]) == 0
    run = out / 'emt_schnet'
    if not (run / 'model.pt').exists():
        # A smaller SchNet (F = 64, T = 3) than the default: more epochs
        # in the few CPU minutes, which is what the embeddings need.
        args = ['train', '--dataset', str(data), '--root',
                str(out / 'cache'), '--run-dir', str(run), '--epochs',
                str(epochs), '--max-time', str(max_time), '--features',
                '64', '--interactions', '3', '--batch-size', '16',
                '--no-progress']
        if (run / 'config.yaml').exists():
            args = ['train', '--resume', '--run-dir', str(run),
                    '--no-progress']
        assert cli(args) == 0
    model, _ = load_model(run / 'model.pt')
    result = interpret.element_embeddings(model, METALS)
    interpret.plot_embeddings(result, out / 'embeddings_emt.png',
                              'SchNet trained on EMT alloys: element '
                              'embeddings')
    results = json.loads((run / 'results.json').read_text())
    comps = result['components']
    groups = torch.tensor(result['groups'])
    centre = {g: comps[groups == g].mean(dim=0) for g in (10, 11)}
    spread = {g: float((comps[groups == g] - centre[g]).norm(dim=-1).mean())
              for g in (10, 11)}
    scores = interpret.embedding_scores(model, METALS)
    return {'elements': result['symbols'], 'groups': result['groups'],
            'scores': {k: scores[k] for k in (
                'same_group', 'null_mean', 'null_std', 'p_value',
                'nearest', 'period_correlation')},
            'components': comps.tolist(),
            'explained_variance': result['explained_variance'].tolist(),
            'group_centre_distance': float((centre[10] - centre[11]).norm()),
            'group_spread': spread,
            'emt_test_energy_mae_eV': results['test_mae'],
            'emt_test_forces_mae_eV_per_A': results['test_forces_mae']}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--out', default='runs/examples/interpretability')
    parser.add_argument('--alloys', type=int, default=400,
                        help='EMT alloy structures to label and train on')
    parser.add_argument('--epochs', type=int, default=150)
    parser.add_argument('--max-time', type=float, default=6.0,
                        help='minutes of EMT training at most')
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    print('1. local chemical potential and atomic energies')
    summary = potentials(out)
    for name in ('full', 'without_NH_hydrogen'):
        s = summary[name]
        print(f"   {name}: Omega from {s['omega_min_eV']:.3f} to "
              f"{s['omega_max_eV']:.3f} eV, lowest near {s['lowest_near']}")
    v = summary['near_vacancy']
    print(f"   within 2.5 Å of the N-H hydrogen's place: mean Omega "
          f"{v['full']['omega_mean_eV']:.3f} eV with it, "
          f"{v['without_NH_hydrogen']['omega_mean_eV']:.3f} eV without")
    print('2. element embeddings of an EMT-trained SchNet')
    summary['embeddings'] = embeddings(out, args.alloys, args.epochs,
                                       args.max_time)
    e = summary['embeddings']
    print(f"   explained variance {e['explained_variance']}; group 10/11 "
          f"centres {e['group_centre_distance']:.3f} apart, spreads "
          f"{e['group_spread']}")
    sc = e['scores']
    print(f"   nearest neighbour in the same group: {sc['same_group']:.3f} "
          f"(random labels {sc['null_mean']:.3f} ± {sc['null_std']:.3f}, "
          f"p = {sc['p_value']:.3f}); Spearman(PC, period): "
          + ', '.join(f"group {g} {row['best']:+.2f}"
                      for g, row in sc['period_correlation'].items()))
    atomic_write_text(out / 'summary.json',
                      json.dumps(summary, indent=2) + '\n')
    print(f'   pictures and summary.json in {out}')


if __name__ == '__main__':
    main()
