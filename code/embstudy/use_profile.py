"""Switch ``params.yaml`` to another profile: write an override file's values over it.

``python -m embstudy.use_profile conf/paper.yaml`` merges the file's keys into
``params.yaml`` in place, keeping its comments and every key it does not name (but ``models``, which the
profile's replace whole), after checking that the result is valid params. ``git checkout params.yaml``
returns to the committed (demo) profile.
"""
from __future__ import annotations

import io
import sys
from pathlib import Path

from ruamel.yaml import YAML

from embstudy import files, params, paths


def merge(base, override, top: bool = True) -> None:
    """Write ``override``'s leaves into the round-trip mapping ``base``, in place; a profile's ``models``
    replace params.yaml's whole (a profile names its own models)."""
    for key, value in override.items():
        if key not in base:
            raise params.ParamsError(f"profile override names {key!r}, which params.yaml does not have")
        if top and key == "models":  # every key dvc.yaml names per model (models.<m>.finetune...) is written
            unset = {"checkpoint": None, "encoder": None, "finetune": None, "extract": None}
            base[key] = {name: unset | dict(model) for name, model in value.items()}
        elif isinstance(value, dict) and isinstance(base[key], dict):
            merge(base[key], value, top=False)
        else:
            base[key] = value


def apply(override: Path, target: Path = paths.PARAMS) -> None:
    """Validate, then atomically replace ``target`` with the merged params."""
    yaml = YAML()
    yaml.width = 4096  # keep long comments on one line
    doc = yaml.load(target.read_text(encoding="utf-8"))
    merge(doc, yaml.load(Path(override).read_text(encoding="utf-8")))
    buf = io.StringIO()
    yaml.dump(doc, buf)
    check = target.with_name(f".{target.name}.check")
    check.write_text(buf.getvalue(), encoding="utf-8")
    try:
        params.load(check)
    finally:
        check.unlink()
    files.atomic_write(target, buf.getvalue().encode())


if __name__ == "__main__":
    apply(Path(sys.argv[1]))
