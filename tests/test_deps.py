"""dvc.yaml's deps tell the truth: each stage lists every ``embstudy`` module it imports and every param it
reads, so ``dvc repro`` reruns whatever a change affects.

Both lists are derived from the code, not kept by hand: the modules from ``sys.modules`` after importing the
stage in a fresh interpreter, the params by running every stage on the micro pipeline's outputs with a
``params.load`` that records each key read. DVC itself says what each stage declares (``Repo.index``).
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from dvc.dependency.param import ParamsDependency
from dvc.repo import Repo

from conftest import REPO, env_for

# Runs each stage's main() in one interpreter (one torch import), params.load() answering with a recorder.
RECORD = textwrap.dedent('''
    import json, runpy, sys
    from pydantic import BaseModel
    from embstudy import params

    class Seen:
        """A params node that records the dotted path of every leaf read through it."""
        def __init__(self, obj, path, seen):
            self._obj, self._path, self._seen = obj, path, seen
        def _at(self, key, value):
            path = f"{self._path}.{key}" if self._path else key
            if isinstance(value, (BaseModel, dict)):
                return Seen(value, path, self._seen)
            self._seen.add(path)
            return value
        def __getattr__(self, name):
            value = getattr(self._obj, name)
            if callable(value):  # model_dump() and the like read the whole node
                self._seen.add(self._path)
                return value
            return self._at(name, value)
        def __getitem__(self, key):
            return self._at(key, self._obj[key])
        def __contains__(self, key):  # a name's membership reads no value
            return key in self._obj
        def __iter__(self):
            self._seen.add(self._path)
            return iter(self._obj)
        def items(self):
            self._seen.add(self._path)
            return self._obj.items()
        def keys(self):
            self._seen.add(self._path)
            return self._obj.keys()

    load, record = params.load, {}
    for stage, *args in json.loads(sys.argv[1]):
        seen = set()
        params.load = lambda *a, seen=seen, **k: Seen(load(*a, **k), "", seen)
        sys.argv = [stage, *args]
        runpy.run_module(f"embstudy.{stage}", run_name="__main__", alter_sys=True)
        record[" ".join([stage, *args])] = sorted(seen)
    print(json.dumps(record))
''')


def declared() -> dict[str, dict]:
    """Per stage command (``pretrain camembert``): DVC's view of its code deps and params."""
    out = {}
    for stage in Repo(str(REPO)).index.stages:
        if not stage.cmd:  # data.dvc, an import
            continue
        module = stage.cmd.split("python -m embstudy.", 1)[1]
        deps = [d for d in stage.deps if not isinstance(d, ParamsDependency)]
        keys = [k for d in stage.deps if isinstance(d, ParamsDependency) for k in d.params]
        out[module] = {"code": {d.def_path for d in deps if d.def_path.startswith("code/")}, "params": keys}
    return out


# One interpreter imports the heavy third-party libraries once, then forks a child per stage module: each
# child imports its stage and reports the embstudy modules in its sys.modules (the parent imported none).
CLOSURES = textwrap.dedent('''
    import importlib, json, os, sys
    import datasets, numpy, pandas, sklearn, torch, transformers  # noqa: F401  shared by every fork
    out = {}
    for module in sys.argv[1:]:
        r, w = os.pipe()
        if os.fork() == 0:
            importlib.import_module(f"embstudy.{module}")
            files = [m.__file__ for n, m in sys.modules.items() if n == "embstudy" or n.startswith("embstudy.")]
            os.write(w, json.dumps(files).encode())
            os._exit(0)
        os.close(w)
        with os.fdopen(r) as f:
            out[module] = json.loads(f.read())
        os.wait()
    print(json.dumps(out))
''')


def imported(modules: set[str]) -> dict[str, set[str]]:
    """Per stage module, the package files it loads."""
    done = subprocess.run([sys.executable, "-c", CLOSURES, *sorted(modules)], cwd=REPO, capture_output=True,
                          text=True, check=True)
    return {m: {Path(f).resolve().relative_to(REPO).as_posix() for f in files}
            for m, files in json.loads(done.stdout).items()}


@pytest.mark.slow  # imports every stage in forked interpreters
def test_every_stage_lists_its_whole_import_closure():
    stages = declared()
    modules = {cmd.split()[0] for cmd in stages}
    closures = imported(modules)
    assert closures["finetune"] >= {"code/embstudy/encoders.py", "code/embstudy/files.py"}  # the probe works
    missing = {cmd: sorted(closures[cmd.split()[0]] - s["code"]) for cmd, s in stages.items()}
    assert not any(missing.values()), f"dvc.yaml lacks imported modules: { {k: v for k, v in missing.items() if v} }"
    extra = {cmd: sorted(s["code"] - closures[cmd.split()[0]]) for cmd, s in stages.items()}
    assert not any(extra.values()), f"dvc.yaml lists modules the stage never imports: {extra}"


def covered(key: str, declared_keys: list[str]) -> bool:
    return any(key == d or key.startswith(d + ".") for d in declared_keys)


def test_every_param_a_stage_reads_is_declared(micro_repo, tmp_path):
    """Every stage of one model (both models for pretrain, whose code differs per architecture) and
    summary run again on a copy of the micro pipeline's outputs; each key they read must be declared."""
    root = tmp_path / "repo"
    shutil.copytree(micro_repo, root, symlinks=True, ignore=shutil.ignore_patterns(".dvc", ".git"))
    runs = [["synth"], ["prepare"], ["pretrain", "camembert"], ["pretrain", "flaubert"], ["tokenize", "camembert"],
            ["control", "camembert"], ["finetune", "camembert"], ["extract", "camembert"],
            ["probe", "camembert"], ["summary"]]
    done = subprocess.run([sys.executable, "-c", RECORD, json.dumps(runs)], cwd=root, env=env_for(root),
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-4000:]
    read = json.loads(done.stdout.splitlines()[-1])
    stages = declared()  # the repository's: the micro copy's values differ, its keys do not
    assert "probe.epochs" in read["probe camembert"]  # the recorder sees reads through objects passed down
    assert "finetune" in read["extract camembert"]  # its model's whole recipe (params.for_model), to list its runs
    assert "models.camembert.finetune" in read["finetune camembert"]  # the model's own values over finetune's
    for cmd, keys in read.items():
        want = stages[cmd]["params"]
        undeclared = [k for k in keys if not covered(k, want)]
        assert not undeclared, f"{cmd} reads {undeclared}, dvc.yaml declares only {want}"


@pytest.mark.parametrize("edited, first", [("code/embstudy/encoders.py", "pretrain@camembert"),
                                           ("code/embstudy/geometry.py", "extract@camembert")])
def test_editing_a_shared_module_reruns_the_stages_that_import_it(edited, first):
    """What `dvc status` would list after an edit: every stage whose deps hold the file, and all after them."""
    stages = {s.addressing: s for s in Repo(str(REPO)).index.stages}
    hit = {name for name, s in stages.items() if any(d.def_path == edited for d in s.deps)}
    assert first in hit and "summary" not in hit
