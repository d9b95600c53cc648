"""Atomic writes: a killed run's leftovers are cleaned by the next write."""
import os

import pytest

from embstudy import io


def test_atomic_dir_removes_what_a_killed_run_left(tmp_path):
    target = tmp_path / "camembert"
    # what SIGKILL leaves: a half-filled temp folder and a temp file of this target...
    half = tmp_path / ".camembert.partial-k1ll3d00"
    (half / "epoch-1").mkdir(parents=True)
    (half / "epoch-1" / "model.safetensors").write_bytes(b"half")
    (tmp_path / ".camembert.partial-x0").write_bytes(b"")
    # ...beside another target's temp files and outputs, which belong to other writers
    others = [tmp_path / ".camembert.json.partial-abc", tmp_path / ".flaubert.partial-abc", tmp_path / "keep"]
    for path in others:
        path.mkdir()
    with io.atomic_dir(target) as tmp:
        (tmp / "done").write_text("ok")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["camembert", *(p.name for p in others)])
    assert [p.name for p in target.iterdir()] == ["done"]


def test_atomic_dir_failure_keeps_the_old_output_whole(tmp_path):
    target = tmp_path / "out"
    with io.atomic_dir(target) as tmp:
        (tmp / "a").write_text("old")
    with pytest.raises(KeyboardInterrupt), io.atomic_dir(target) as tmp:
        (tmp / "a").write_text("new, half")
        raise KeyboardInterrupt  # as SIGINT in the middle of the work
    assert os.listdir(tmp_path) == ["out"] and (target / "a").read_text() == "old"
    with io.atomic_dir(target) as tmp:
        (tmp / "b").write_text("new")
    assert os.listdir(tmp_path) == ["out"] and os.listdir(target) == ["b"]


def test_atomic_write_removes_its_own_stale_temp_files_only(tmp_path):
    (tmp_path / ".m.json.partial-dead0000").write_bytes(b"{")
    (tmp_path / ".m.partial-dead0000").mkdir()  # the temp of folder target "m": not this file's
    io.write_json(tmp_path / "m.json", {"a": 1})
    assert sorted(os.listdir(tmp_path)) == [".m.partial-dead0000", "m.json"]

