r"""Finding a trained model from what a user types: a run folder, a
``model.pt`` file, or the name of a pretrained model shipped with the
package."""
from pathlib import Path
from typing import Any, Dict, Optional, Tuple

from pyg_schnet.models import AtomisticModel


def load_trained(where: str, pretrained: bool = False
                 ) -> Tuple[AtomisticModel, Dict[str, Any], Optional[Any]]:
    r"""The model named by :obj:`where`: with :obj:`pretrained`, always the
    package's pretrained model of that name (never a file that happens to
    be called so); otherwise a run folder or a model file, or a
    pretrained model's name when no such path exists.

    Returns:
        :obj:`(model, metadata, paths)`, :obj:`paths` the run's
        :class:`~pyg_schnet.train.run.RunPaths` for a run folder, else
        :obj:`None`; for a pretrained model the metadata is its card.

    Raises:
        ValueError: for an unknown pretrained name, or a name that is both
            a path here and a pretrained model (say which one is meant).
        FileNotFoundError: when nothing of that name exists, or a run
            folder has no :obj:`model.pt` yet.
    """
    from pyg_schnet.models import list_pretrained, load_model, load_pretrained
    from pyg_schnet.train.run import RunPaths

    names = list_pretrained()
    if pretrained:
        model, card = load_pretrained(where)
        return model, card, None
    path = Path(where)
    if not path.exists():
        if where in names:
            model, card = load_pretrained(where)
            return model, card, None
        raise FileNotFoundError(
            f'no run folder, model file or pretrained model {where!r} '
            f"(pretrained: {', '.join(names) or 'none'})")
    if where in names:
        raise ValueError(
            f"'{where}' is both a {'folder' if path.is_dir() else 'file'} "
            f'here and a pretrained model: write ./{where} for the '
            f'{"folder" if path.is_dir() else "file"}, or use the '
            f'pretrained model with --pretrained {where}')
    paths = RunPaths(path) if path.is_dir() else None
    if paths is not None and not paths.model.exists():
        raise FileNotFoundError(
            f'{where} has no model.pt: it is not a finished run (finish or '
            f'continue it with pyg-schnet train --resume --run-dir {where})')
    model, meta = load_model(paths.model if paths else path)
    return model, meta, paths
