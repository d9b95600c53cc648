"""Interrupted runs resume to the outputs of an uninterrupted run; two runs from scratch give the same files.

One extra micro pipeline run (micro_repo's params, in a fresh copy, but fine-tuning in two worker processes
where micro_repo runs one after another) is interrupted three times, each time while a stage is mid-work, i.e.
its temp folder beside its output (``files.temp_prefix``) already holds part of the output. The whole run is
frozen (SIGSTOP) at that moment, so the test knows the stage had not finished yet, then signalled:

* SIGINT once the first ``pretrain`` stage has written its tokenizer (training follows);
* SIGKILL once the first ``finetune`` stage has saved its epoch-1 checkpoint;
* SIGINT once the first ``extract`` stage has begun writing a variant's vectors.

After each interruption every stage output is absent or whole (equal to micro_repo's), never half-written;
after SIGINT no temp folder is left (after SIGKILL one is, and the next run removes it). After the SIGKILL,
DVC's ``.dvc/tmp/rwlock`` still names the dead dvc process: the next ``dvc repro`` drops it with a warning
and runs, which the extract round relies on (``.dvc/tmp/lock`` is an flock, freed by the kernel).

A last ``dvc repro`` then completes, ``dvc status`` is clean and no temp path is left anywhere. Its files
are compared with micro_repo's, an uninterrupted run from scratch in another folder, so this is also the
check that two runs give identical files, and that the fine-tuning's floats do not depend on ``finetune.jobs``.
Every file under ``metrics/`` and ``artifacts/`` is byte-identical except what ``VARIES`` lists:
``artifacts/extract/<model>/timing.json``, whose wall seconds and tokens per second are the stage's one
documented non-deterministic fields (its other fields must match).
Timings stay out of the metrics files, and the tokenised splits carry a path-independent fingerprint
(``embstudy.tokenize.fingerprint``), so nothing else may differ, even between two folders.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from fnmatch import fnmatch
from pathlib import Path

import psutil
import pytest
import transformers
import yaml

from conftest import env_for, micro_copy, offline, run
from embstudy import files


def drop(*keys: str) -> Callable[[dict], dict]:
    return lambda data: {k: v for k, v in data.items() if k not in keys}


# JSON files whose listed fields differ between two correct runs (see the module docstring)
VARIES = {
    "artifacts/extract/*/timing.json": lambda data: {v: drop("wall_s", "tokens_per_s")(t)
                                                     for v, t in data.items()},
}


def comparable(root: Path, rel: str) -> bytes:
    """The file's bytes; for a file in VARIES that holds varying fields, its JSON without them."""
    raw = (root / rel).read_bytes()
    for pattern, stable in VARIES.items():
        if fnmatch(rel, pattern):
            data = json.loads(raw)
            if stable(data) != data:
                return json.dumps(stable(data), sort_keys=True).encode()
    return raw


def differences(root: Path, reference: Path, folders: list[str]) -> list[str]:
    """Files of ``folders`` that differ between the two trees, or exist in only one of them."""
    def files(base: Path) -> set[str]:
        return {p.relative_to(base).as_posix() for f in folders if (base / f).exists()
                for p in [base / f, *(base / f).rglob("*")] if p.is_file()}

    ours, theirs = files(root), files(reference)
    out = [f"only in the resumed run: {rel}" for rel in sorted(ours - theirs)]
    out += [f"only in the reference run: {rel}" for rel in sorted(theirs - ours)]
    return out + [f"differs: {rel}" for rel in sorted(ours & theirs)
                  if comparable(root, rel) != comparable(reference, rel)]


def outputs(reference: Path) -> dict[str, list[str]]:
    """{stage: its outputs under artifacts/}, from the uninterrupted run's dvc.lock (matrix names follow)."""
    stages = yaml.safe_load((reference / "dvc.lock").read_text())["stages"]
    return {name: [o["path"] for o in stage.get("outs", []) if o["path"].startswith("artifacts/")]
            for name, stage in stages.items()}


def temp_folders(root: Path, outs: list[str]) -> list[tuple[str, Path]]:
    """(output, temp folder) for each atomic_dir at work on one of ``outs``."""
    return [(out, tmp) for out in outs for tmp in (root / out).parent.glob(files.temp_prefix(root / out) + "*")]


def stopped(process: psutil.Process) -> bool:
    try:
        return process.status() in (psutil.STATUS_STOPPED, psutil.STATUS_ZOMBIE, psutil.STATUS_DEAD)
    except psutil.NoSuchProcess:
        return True


def freeze(proc: subprocess.Popen) -> None:
    """SIGSTOP the run's process group and wait until all of it has stopped (delivery is asynchronous)."""
    os.killpg(proc.pid, signal.SIGSTOP)
    top = psutil.Process(proc.pid)  # dvc; the stage's shell and python are its children, in its group
    members = [top, *top.children(recursive=True)]
    while not all(map(stopped, members)):
        time.sleep(0.001)


def interrupt(proc: subprocess.Popen, root: Path, outs: list[str], ready: Callable[[Path], bool],
              sig: int) -> tuple[str, Path]:
    """Send ``sig`` to the run while a temp folder of ``outs`` satisfies ``ready``; return (output, folder).

    Any stage writing one of ``outs`` will do: if one finishes in the instant between the check and the
    freeze, the next one is caught instead.
    """
    while proc.poll() is None:
        for out, tmp in temp_folders(root, outs):
            try:
                caught = ready(tmp)
            except FileNotFoundError:  # renamed into place while we looked
                caught = False
            if caught:
                freeze(proc)
                if tmp.exists():  # frozen before the rename: the stage is mid-work
                    os.killpg(proc.pid, sig)
                    os.killpg(proc.pid, signal.SIGCONT)  # a stopped process acts on its signals once resumed
                    return out, tmp
                os.killpg(proc.pid, signal.SIGCONT)
        time.sleep(0.01)
    pytest.fail(f"dvc repro ended (exit {proc.returncode}) before a stage writing {outs} was caught mid-work")


def interrupted_repro(root: Path, outs: list[str], ready: Callable[[Path], bool], sig: int, log: Path):
    """``dvc repro`` in its own session, interrupted by ``sig`` mid-stage: (exit code, output, temp folder).

    The stages' own temp files (TMPDIR) go beside ``log``, to see what a kill leaves there.
    """
    env = env_for(root) | {"TMPDIR": str(log.parent)}
    # A shell without job control starts `cmd &` with SIGINT ignored; that would stay ignored in dvc and
    # its stages, deaf to the SIGINT sent below: start them with Python's usual handler instead.
    heard = signal.signal(signal.SIGINT, signal.default_int_handler)
    with open(log, "w") as printed:
        try:
            proc = subprocess.Popen(offline(["dvc", "repro"]), cwd=root, env=env, stdout=printed,
                                    stderr=subprocess.STDOUT, start_new_session=True)
        finally:
            signal.signal(signal.SIGINT, heard)
        try:
            out, tmp = interrupt(proc, root, outs, ready, sig)
            try:
                return proc.wait(timeout=300), out, tmp
            except subprocess.TimeoutExpired:  # SIGINT ignored: end it, and say so
                os.killpg(proc.pid, signal.SIGKILL)
                pytest.fail(f"dvc repro still ran 300 s after {signal.Signals(sig).name}; see {log}")
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def assert_nothing_half_written(root: Path, reference: Path, stages: dict[str, list[str]]) -> None:
    """Each stage output is absent or whole: equal to the uninterrupted run's."""
    present = [out for outs in stages.values() for out in outs if (root / out).exists()]
    half = differences(root, reference, present)
    assert not half, "half-written or different outputs:\n" + "\n".join(half)


def test_interrupted_runs_resume_to_the_outputs_of_an_uninterrupted_run(micro_repo, tmp_path):
    root = micro_copy(tmp_path / "repo", {"finetune": {"jobs": 2}})  # micro_repo's runs, in a pool of two
    (tmp_path / "logs").mkdir()
    stages = outputs(micro_repo)
    plan = [("pretrain", lambda tmp: any(tmp.iterdir()), signal.SIGINT),
            ("finetune", lambda tmp: any(tmp.glob("*/epoch-1")), signal.SIGKILL),
            ("extract", lambda tmp: any(tmp.glob("cls-*.npz")), signal.SIGINT)]
    for prefix, ready, sig in plan:
        log = tmp_path / "logs" / f"{prefix}.log"
        # every stage of this kind (finetune@camembert, finetune@flaubert): the first caught counts
        kind = [out for name, outs in stages.items() if name.startswith(prefix) for out in outs]
        code, out, tmp = interrupted_repro(root, kind, ready, sig, log)
        assert code != 0, f"dvc repro, {sig.name} in {prefix}, exited 0:\n{log.read_text()[-2000:]}"
        assert not (root / out).exists()  # the interrupted stage's output never reached its place
        assert tmp.exists() == (sig == signal.SIGKILL)  # SIGINT cleans up; SIGKILL cannot, the next run does
        assert_nothing_half_written(root, micro_repo, stages)

    done = run(offline(["dvc", "repro", "-v"]), root, timeout=1200)
    assert done.returncode == 0, f"dvc repro to resume failed:\n{done.stdout[-2000:]}{done.stderr[-6000:]}"
    status = run(["dvc", "status", "--json", "dvc.yaml"], root, timeout=120)
    assert json.loads(status.stdout) == {}, status.stdout
    differ = differences(root, micro_repo, ["metrics", "artifacts"])
    assert not differ, "the resumed run differs from the uninterrupted one:\n" + "\n".join(differ)


LOAD_INTERRUPTED = """
import sys, threading
import embstudy  # the package's defaults, as `python -m embstudy.<stage>` sets them first
import transformers

start = threading.Thread.start
def interrupted(self):  # the moment CI hit: SIGINT while from_pretrained starts its first thread
    start(self)
    raise KeyboardInterrupt
threading.Thread.start = interrupted
transformers.AutoModel.from_pretrained(sys.argv[1])
"""


def test_a_ctrl_c_while_weights_load_ends_the_process(tmp_path):
    """transformers' thread-pool loading, interrupted as it starts a worker, left a thread Python waited for at
    exit: a stage that never ended (this test's process outlived its 60 s without ``embstudy``'s default)."""
    config = transformers.BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                                     intermediate_size=32)
    transformers.BertModel(config).save_pretrained(tmp_path / "tiny")
    script = tmp_path / "load.py"
    script.write_text(LOAD_INTERRUPTED)
    env = {k: v for k, v in os.environ.items() if k != "HF_DEACTIVATE_ASYNC_LOAD"}
    try:
        done = subprocess.run([sys.executable, str(script), str(tmp_path / "tiny")], env=env, timeout=60,
                              capture_output=True, text=True)
    except subprocess.TimeoutExpired:
        pytest.fail("a KeyboardInterrupt while the weights loaded left the process running 60 s later")
    assert "KeyboardInterrupt" in done.stderr or done.returncode == 0, done.stderr[-2000:]
