"""Pretrained models ship inside the package, load offline with
weights_only=True, and reach the error their card states."""
import json

import pytest
import torch
from torch_geometric.loader import DataLoader

from pyg_schnet.models import list_pretrained, load_pretrained
from pyg_schnet.models.pretrained import PRETRAINED_DIR

CARD_KEYS = {'name', 'model', 'target', 'unit', 'dataset', 'split',
             'training_commands', 'epochs_trained', 'train_hours',
             'hardware', 'test_mae_eV', 'test_count', 'check_subset'}


def test_pretrained_models_are_shipped():
    names = list_pretrained()
    assert {'schnet-qm9-U0', 'dtnn-qm9-U0'} <= set(names)
    for name in names:
        blob = torch.load(PRETRAINED_DIR / f'{name}.pt', weights_only=True)
        assert blob['format'] == 'pyg_schnet.model/1'
        card = json.loads((PRETRAINED_DIR / f'{name}.json').read_text())
        assert CARD_KEYS <= set(card), CARD_KEYS - set(card)
        assert card['split']['test'] == 10000
        size = (PRETRAINED_DIR / f'{name}.pt').stat().st_size
        assert size < 10e6  # a few MB


@pytest.mark.parametrize('name', list_pretrained())
def test_pretrained_model_reaches_its_card(name):
    import sys
    from pathlib import Path

    from pyg_schnet.data import QM9
    from pyg_schnet.train.config import default_data_root
    sys.path.insert(0, str(Path(__file__).parent.parent / 'benchmarks'
                           / 'pretrained'))
    from make_split import pretrained_split
    model, card = load_pretrained(name)
    assert not model.training and card['target'] == 'U0'
    dataset = QM9(f'{default_data_root()}/qm9')
    split = pretrained_split()
    subset = dataset[split['test'][:card['check_subset'][
        'first_test_molecules']]]
    errors = []
    for batch in DataLoader(subset, batch_size=128):
        with torch.no_grad():
            errors.append((model(batch) - batch.U0).abs())
    mae = float(torch.cat(errors).mean())
    assert mae == pytest.approx(card['check_subset']['mae_eV'], abs=2e-4)


def test_unknown_pretrained_name_is_a_clear_error():
    with pytest.raises(ValueError, match='available: .*schnet-qm9-U0'):
        load_pretrained('schnet-qm9-nothing')


def test_main_job_reports_the_pretrained_model_on_its_test_set():
    from pyg_schnet.data.splits import qm9_split, random_split
    from pyg_schnet.train.config import TrainConfig, default_data_root
    from pyg_schnet.train.datasets import load_dataset
    from pyg_schnet.train.run import _pretrained_on
    config = TrainConfig()
    dataset, info = load_dataset('qm9', default_data_root(), None, None)
    loader_args = dict(batch_size=128)
    split = qm9_split(len(dataset), 10, 10, 200, seed=0)
    test_set = dataset[split[2]]
    report = _pretrained_on(config, info, len(dataset), split, test_set,
                            loader_args)
    model, card = load_pretrained('schnet-qm9-U0')
    with torch.no_grad():
        batch = next(iter(DataLoader(test_set, batch_size=200)))
        expected = float((model(batch) - batch.U0).abs().mean())
    assert report['name'] == 'schnet-qm9-U0'
    assert report['test_mae'] == pytest.approx(expected, rel=1e-5)
    assert report['train_size'] == card['split']['train']
    # A test set outside the fixed block may hold the pretrained model's
    # training molecules: no comparison then.
    other = random_split(len(dataset), 10, 10, 200, seed=3)
    assert _pretrained_on(config, info, len(dataset), other,
                          dataset[other[2]], loader_args) is None
