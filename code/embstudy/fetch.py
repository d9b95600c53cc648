"""The real corpus for the paper profiles: ``data/cls-acl10-unprocessed.tar.gz``, the frozen import ``data.dvc``.

``python -m embstudy.fetch`` (``make data``; ``make paper`` runs it first):

* the tarball is there: its md5 is recorded in ``data.dvc`` (a tarball downloaded by hand), or checked
  against the one recorded (another file fails, in one line);
* it is not, and the host in ``data.dvc`` answers: ``dvc update data.dvc`` downloads it and records it;
* it is not, and the host does not answer: one line saying so, with the way out (download it where the
  internet is reachable, put it in place, run this again). ``dvc update`` would only say that the URL "does
  not exist".

Recording by hand is needed because ``dvc commit`` re-reads an import's URL, which fails offline.
"""
from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlparse

from ruamel.yaml import YAML

from embstudy import paths


class FetchError(SystemExit):
    """The corpus is neither here nor reachable, or is not the recorded one; exits with one line."""


def reachable(url: str, timeout: float = 5.0) -> bool:
    """Whether ``url``'s host accepts a TCP connection (name resolution included)."""
    parts = urlparse(url)
    try:
        with socket.create_connection((parts.hostname, parts.port or 443), timeout=timeout):
            return True
    except OSError:
        return False


def record(root: Path, dvcfile: str) -> str:
    """Record the tarball in ``dvcfile`` as ``dvc commit`` would (its md5 and size, the file in DVC's cache),
    without reading the import's URL; or check it against what is recorded. Returns what was done."""
    from dvc.repo import Repo

    with Repo(str(root)) as repo:
        stage = repo.stage.load_one(dvcfile)
        out = stage.outs[0]
        recorded = out.hash_info.value
        out.save()  # hashes the file
        digest = out.hash_info.value
        if recorded == digest:
            return f"{out}: md5 {digest}, as {dvcfile} records"
        if recorded:
            raise FetchError(f"data: {root / str(out)} has md5 {digest}, {dvcfile} records {recorded}: another "
                             "file (remove it and run `make data` again, or `dvc update data.dvc` online)")
        out.commit()
        stage.md5 = stage.compute_md5()
        stage.dump()  # comments kept
    return f"{out}: recorded md5 {digest} in {dvcfile} (commit it)"


def fetch(root: Path = paths.ROOT, dvcfile: str = "data.dvc") -> str:
    """Make the corpus present and recorded (see the module docstring); returns what was done."""
    stage = YAML(typ="safe").load((root / dvcfile).read_text(encoding="utf-8"))
    url, tarball = stage["deps"][0]["path"], root / stage["outs"][0]["path"]
    if tarball.exists():
        return record(root, dvcfile)
    if not reachable(url):
        raise FetchError(
            f"data: {urlparse(url).hostname} cannot be reached from here (no network?), so {tarball.name} "
            f"cannot be downloaded. Download {url} where the internet is reachable, put it at "
            f"{tarball.relative_to(root)} and run `make data` again: it records the file's md5 in data.dvc.")
    if subprocess.run(["dvc", "update", dvcfile], cwd=root).returncode:
        raise FetchError(f"data: `dvc update {dvcfile}` failed (its error is above)")
    return f"{tarball.name}: downloaded and recorded by dvc update"


if __name__ == "__main__":
    print(fetch(), file=sys.stderr)
