"""Writes that never leave a half-written output behind: temp path beside the target, then rename.

Temp paths are named ``.<target name>.partial-<random>``: a run killed outright (SIGKILL, power loss)
leaves them behind, and the next write of the same target removes them first.
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path


def _umask() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return umask


def temp_prefix(target: Path) -> str:
    """Temp names of ``target``; ``partial-`` keeps them apart from another target's (``x`` vs ``x.json``)."""
    return f".{target.name}.partial-"


def remove_stale(target: Path) -> list[Path]:
    """Delete temp paths of ``target`` left by a killed run; returns them.

    Safe because one stage owns each target (DVC's lock keeps two writers of an output apart).
    """
    stale = sorted(target.parent.glob(temp_prefix(target) + "*"))
    for path in stale:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
    return stale


@contextlib.contextmanager
def atomic_dir(target: Path) -> Iterator[Path]:
    """Yield an empty temp folder that replaces ``target`` only if the block succeeds."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale(target)
    tmp = Path(tempfile.mkdtemp(prefix=temp_prefix(target), dir=target.parent))
    os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes 0700; give the folder the usual permissions
    try:
        yield tmp
        # the old target is moved aside in one rename, not deleted in place, so a kill at any moment
        # leaves the old or the new output whole (or none), never a half-deleted one
        trash = Path(tempfile.mkdtemp(prefix=temp_prefix(target), dir=target.parent))
        if target.exists():
            os.replace(target, trash / target.name)
        os.replace(tmp, target)
        shutil.rmtree(trash, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def atomic_write(target: Path, data: bytes) -> None:
    """Write ``data`` to ``target`` through a temp file in the same folder and a rename."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale(target)
    fd, tmp = tempfile.mkstemp(prefix=temp_prefix(target), dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the file the usual permissions
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_json(target: Path, obj) -> None:
    """Atomic JSON with sorted keys, so reruns with equal results give identical files."""
    atomic_write(target, (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode())


def _size(n: float) -> str:
    return f"{n / 1e9:.1f} GB" if n >= 1e8 else f"{n / 1e6:.1f} MB"


def check_free_space(folder: Path, need_bytes: int, what: str) -> None:
    """Exit in one line, before any work, when the disk that will hold ``folder`` has < ``need_bytes`` free.

    ``what`` starts the line: who writes what, e.g. ``"finetune: camembert: 3 epoch checkpoints"``. A stage
    calls this before writing outputs of several GB, so a full disk fails in seconds, not after hours.
    """
    folder = Path(folder).absolute()
    existing = next(p for p in (folder, *folder.parents) if p.exists())  # the folder may not exist yet
    free = shutil.disk_usage(existing).free
    if free < need_bytes:
        raise SystemExit(f"{what}: need ~{_size(need_bytes)} free in {folder}, only {_size(free)} free")
    logging.getLogger("embstudy.files").info("%s: need ~%s, %s free in %s", what, _size(need_bytes), _size(free),
                                          folder)
