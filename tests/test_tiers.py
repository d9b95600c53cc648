"""The two tiers hold: ``make test`` runs every test of one pipeline fixture in one xdist worker (so the fixture
is built once), and ``make test-fast`` leaves those tests out.

Both run this repository's ``tests/conftest.py`` on a throw-away module whose ``paper_repo`` fixture stands in
for the real one (it only names the worker), with the options the Makefile's recipes pass.
"""
from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO

MODULE = '''
import os, pytest

@pytest.fixture
def paper_repo():  # shadows conftest's: the name is what puts a test in its group
    return os.environ.get("PYTEST_XDIST_WORKER", "main")

@pytest.mark.parametrize("i", range(3))
def test_grouped(paper_repo, i):
    print("WORKER", paper_repo)

@pytest.mark.parametrize("i", range(6))
def test_free(i):
    pass
'''


def recipe(target: str) -> list[str]:
    """The pytest options of a Makefile target's recipe (``python -m pytest ...``)."""
    text = (REPO / "Makefile").read_text()
    line = re.search(rf"^{target}:.*\n\t(python -m pytest[^\n]*)", text, re.M).group(1)
    return shlex.split(line, comments=True)[3:]  # a recipe may end in a shell comment


def pytest_in(tmp: Path, options: list[str]) -> str:
    shutil.copy(REPO / "tests" / "conftest.py", tmp / "conftest.py")
    (tmp / "test_module.py").write_text(MODULE)
    (tmp / "pytest.ini").write_text("[pytest]\nmarkers = slow: test\n")
    done = subprocess.run([sys.executable, "-m", "pytest", *options, "-v", "-s", "-p", "no:cacheprovider"],
                          cwd=tmp, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout


def test_make_test_runs_a_pipeline_fixtures_tests_in_one_worker(tmp_path):
    options = recipe("test")
    assert "auto" in options
    out = pytest_in(tmp_path, [("2" if o == "auto" else o) for o in options])  # two workers, on any machine
    # xdist suffixes a grouped test's id with its group: the scheduler hands the group out as one unit
    grouped = re.findall(r"\[(gw\d)\].*PASSED test_module.py::test_grouped\[\d\]@paper_repo", out)
    assert len(grouped) == 3, out[-3000:]
    assert len(set(grouped)) == 1, f"one group on workers {sorted(set(grouped))}"
    assert len(re.findall(r"PASSED test_module.py::test_free", out)) == 6


def test_make_test_fast_leaves_the_pipeline_tests_out(tmp_path):
    out = pytest_in(tmp_path, recipe("test-fast"))
    assert "test_grouped" not in out and re.search(r"\b6 passed\b", out), out[-2000:]  # xdist counts no deselected
