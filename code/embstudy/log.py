"""One logging set-up for every stage: each line names the stage, the model and the profile."""
from __future__ import annotations

import logging


def setup(stage: str, profile: str, model: str | None = None) -> logging.Logger:
    """Configure the root logger once and return the stage's logger."""
    where = f"{stage}[{model}]" if model else stage
    logging.basicConfig(
        level=logging.INFO,
        format=f"%(asctime)s {where} ({profile}): %(message)s",
        datefmt="%H:%M:%S",
        force=True,
    )
    for noisy in ("httpx", "urllib3", "filelock", "datasets"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    return logging.getLogger(f"embstudy.{stage}")
