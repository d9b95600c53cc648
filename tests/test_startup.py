"""A stage imports with the cyclic collector off and turns it back on before it computes (embstudy/__init__.py).

Each check runs in a fresh interpreter whose ``sys.orig_argv`` is set to the command line in question before
``embstudy`` is first imported, as ``python -m embstudy.<stage>`` (dvc.yaml's commands) would have it.
"""
from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml

import embstudy
from conftest import REPO

PROBE = """
import gc, json, sys
sys.orig_argv = json.loads(sys.argv[1])
import embstudy
off = not gc.isenabled()
if sys.argv[2] == "worker":  # a finetune pool's worker, set up by its initializer
    from embstudy import finetune
    finetune.worker("finetune", "demo", "camembert")
else:
    from embstudy import stage
    stage.start("synth")
print(json.dumps({"off_while_importing": off, "on_after_start": gc.isenabled(), "frozen": gc.get_freeze_count()}))
"""


def startup(argv: list[str], starts: str = "stage") -> dict:
    done = subprocess.run([sys.executable, "-c", PROBE, json.dumps(argv), starts], cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.splitlines()[-1])


SPAWNED = ["-c", "from multiprocessing.spawn import spawn_main; spawn_main(...)", "--multiprocessing-fork"]


@pytest.mark.parametrize("argv, starts", [(["-m", "embstudy.tokenize", "camembert"], "stage"),
                                          (["-m", "embstudy.summary"], "stage"), (SPAWNED, "worker")])
def test_a_stage_or_its_worker_imports_with_the_collector_off_until_it_starts(argv, starts):
    seen = startup([sys.executable, *argv], starts)
    assert seen["off_while_importing"] and seen["on_after_start"] and seen["frozen"] > 0, seen


@pytest.mark.parametrize("argv", [["-m", "embstudy.book", "--preview"], ["-m", "embstudy.bench"],
                                  ["-m", "pytest"], ["-c", "import embstudy"]])
def test_any_other_command_keeps_the_collector_on(argv):
    seen = startup([sys.executable, *argv])
    assert not seen["off_while_importing"] and seen["on_after_start"] and seen["frozen"] == 0, seen


def test_the_stages_are_dvc_yamls():
    assert set(embstudy.STAGES) == set(yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"])
