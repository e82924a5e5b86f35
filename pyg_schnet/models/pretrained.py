"""Pretrained models shipped inside the package: loaded offline, never
downloaded, each with a card that says how it was made."""
import json
from pathlib import Path
from typing import Any, Dict, List, Tuple, Union

import torch

from pyg_schnet.io import CorruptFileError
from pyg_schnet.models.io import load_model
from pyg_schnet.models.potential import AtomisticModel

#: Where the weights (``NAME.pt``) and cards (``NAME.json``) live.
PRETRAINED_DIR = Path(__file__).resolve().parent.parent / 'pretrained'


def list_pretrained() -> List[str]:
    r"""The names of the pretrained models in this installation."""
    return sorted(p.stem for p in PRETRAINED_DIR.glob('*.pt')
                  if p.with_suffix('.json').exists())


def pretrained_card(name: str) -> Dict[str, Any]:
    r"""The card of a pretrained model: what it predicts (target, unit),
    the training command, data split (seed, sizes), epochs, wall time,
    hardware and the test error on its held-out test set.

    Raises:
        ValueError: for an unknown name, listing the known ones.
    """
    path = PRETRAINED_DIR / f'{name}.json'
    if name not in list_pretrained():
        raise ValueError(f"no pretrained model '{name}' (available: "
                         f"{', '.join(list_pretrained()) or 'none'})")
    try:
        card = json.loads(path.read_text(encoding='utf-8'))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CorruptFileError(f'the card of the pretrained model {name} '
                               f'({path}) is not valid JSON: {e}; reinstall '
                               f'pyg_schnet') from None
    check_card(card, path)
    return card


#: Fields every card has, with their types.
CARD_FIELDS = {'target': str, 'unit': str, 'model': str,
               'test_mae_eV': (int, float), 'test_count': int,
               'epochs_trained': int, 'split': dict}


def check_card(card: Any, path: Union[str, Path] = 'card') -> None:
    r"""Raises :class:`~pyg_schnet.io.CorruptFileError` naming the file
    and the field when :obj:`card` is not a card: a JSON object with the
    fields of :data:`CARD_FIELDS` (and :obj:`split.train`, a count)."""
    if not isinstance(card, dict):
        raise CorruptFileError(f'{path} is not a model card (a JSON '
                               f'object); reinstall pyg_schnet')
    for key, kind in CARD_FIELDS.items():
        value = card.get(key)
        if isinstance(value, bool) or not isinstance(value, kind):
            raise CorruptFileError(
                f"{path}: the card's '{key}' is missing or not a "
                f'{kind.__name__ if isinstance(kind, type) else "number"} '
                f'(got {value!r}); reinstall pyg_schnet')
    train = card['split'].get('train')
    if isinstance(train, bool) or not isinstance(train, int):
        raise CorruptFileError(f"{path}: the card's 'split.train' is "
                               f'missing or not a count (got {train!r})')


def load_pretrained(name: str,
                    map_location: Union[str, torch.device] = 'cpu'
                    ) -> Tuple[AtomisticModel, Dict[str, Any]]:
    r"""A pretrained model by name (e.g. :obj:`"schnet-qm9-U0"`), loaded
    from the package with :obj:`weights_only=True`, in evaluation mode.

    Returns:
        :obj:`(model, card)`, the card as :func:`pretrained_card` gives it
        (with the saved metadata: target, unit, ...).
    """
    card = pretrained_card(name)
    model, metadata = load_model(PRETRAINED_DIR / f'{name}.pt', map_location)
    return model, {**metadata, **card}
