"""Atomic writes: a killed run's leftovers are cleaned by the next write; a full disk fails in one line."""
import os
import shutil
from collections import namedtuple

import pytest

from embstudy import files

Usage = namedtuple("Usage", "total used free")


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
    with files.atomic_dir(target) as tmp:
        (tmp / "done").write_text("ok")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["camembert", *(p.name for p in others)])
    assert [p.name for p in target.iterdir()] == ["done"]


def test_atomic_dir_failure_keeps_the_old_output_whole(tmp_path):
    target = tmp_path / "out"
    with files.atomic_dir(target) as tmp:
        (tmp / "a").write_text("old")
    with pytest.raises(KeyboardInterrupt), files.atomic_dir(target) as tmp:
        (tmp / "a").write_text("new, half")
        raise KeyboardInterrupt  # as SIGINT in the middle of the work
    assert os.listdir(tmp_path) == ["out"] and (target / "a").read_text() == "old"
    with files.atomic_dir(target) as tmp:
        (tmp / "b").write_text("new")
    assert os.listdir(tmp_path) == ["out"] and os.listdir(target) == ["b"]


def test_atomic_write_removes_its_own_stale_temp_files_only(tmp_path):
    (tmp_path / ".m.json.partial-dead0000").write_bytes(b"{")
    (tmp_path / ".m.partial-dead0000").mkdir()  # the temp of folder target "m": not this file's
    files.write_json(tmp_path / "m.json", {"a": 1})
    assert sorted(os.listdir(tmp_path)) == [".m.partial-dead0000", "m.json"]


def test_free_space_short_exits_in_one_line_before_the_folder_exists(tmp_path, monkeypatch):
    asked = []

    def usage(path):
        asked.append(path)
        return Usage(total=10**12, used=10**12 - 4 * 10**8, free=4 * 10**8)

    monkeypatch.setattr(shutil, "disk_usage", usage)
    folder = tmp_path / "artifacts" / "finetune" / "camembert"
    with pytest.raises(SystemExit) as err:
        files.check_free_space(folder, 1_300_000_000, "finetune: camembert: 3 epoch checkpoints")
    assert str(err.value) == (f"finetune: camembert: 3 epoch checkpoints: need ~1.3 GB free in {folder}, "
                              "only 0.4 GB free")
    assert asked == [tmp_path] and not (tmp_path / "artifacts").exists()  # nearest existing parent, no mkdir
    files.check_free_space(folder, 4 * 10**8, "enough")  # exactly the free bytes: no exit
