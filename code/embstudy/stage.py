"""What every stage does first, and the one error a stage raises.

:func:`start` loads and checks ``params.yaml`` once, sets up the log lines (stage, model, profile) and gives
torch every core this process may use; each stage's ``main()`` begins with it and passes plain values down.
:class:`StageError` ends a stage with one line naming the culprit: a non-zero exit, no traceback, and (the
stages write through :mod:`embstudy.files`) nothing half-written.
"""
from __future__ import annotations

import logging
import os
import sys

import embstudy
from embstudy import log, params
from embstudy.params import Model, Params


class StageError(SystemExit):
    """A stage cannot go on: bad input, a missing upstream output, a failed gate. Exits with its one line."""


def start(stage: str, model: str | None = None) -> tuple[Params, logging.Logger]:
    """``(params, logger)`` for ``stage`` (of ``model``); an unknown model name fails here, in one line."""
    embstudy.imports_done()  # the stage module's imports are over: the collector back on
    p = params.load()
    if model is not None:
        model_params(p, model)
    logger = log.setup(stage, p.profile, model)
    if "torch" in sys.modules:  # the stages that compute imported it; the others need not pay its import
        sys.modules["torch"].set_num_threads(n_threads())
    return p, logger


def model_params(p: Params, name: str) -> Model:
    """``p.models[name]``, or a one-line error listing the configured names."""
    if name not in p.models:
        raise StageError(f"unknown model {name!r}; params.yaml models are {sorted(p.models)}")
    return p.models[name]


def n_threads() -> int:
    """Every core this process may use (both on the 2-core demo machine; one under ``taskset -c 0``)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
