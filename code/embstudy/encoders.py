"""Where each model's weights come from, and loading them the same way for both profiles.

The demo profile pre-trains its own encoders into ``artifacts/pretrain/<name>``;
the paper profile names a hub checkpoint. Every later stage calls
:func:`checkpoint` and loads through ``from_pretrained``, so both profiles share
one code path.
"""
from __future__ import annotations

from transformers import AutoTokenizer

from embstudy import paths
from embstudy.params import Model, Params, ParamsError


def model_params(p: Params, name: str) -> Model:
    """The ``models.<name>`` entry, or a one-line error listing the names there are."""
    if name not in p.models:
        raise ParamsError(f"unknown model {name!r}: params.yaml defines {', '.join(sorted(p.models))}")
    return p.models[name]


def checkpoint(name: str, model: Model) -> str:
    """The ``from_pretrained`` argument for ``name``: a hub id or the demo's own folder."""
    return model.checkpoint if model.checkpoint is not None else str(paths.pretrained(name))


def load_tokenizer(source: str):
    """``AutoTokenizer.from_pretrained(source)``, the same call for a hub id and a local folder."""
    return AutoTokenizer.from_pretrained(source)
