"""Hub checkpoints: a cached model is used with no network; an uncached one fails fast with advice."""
import json
import subprocess
import sys
import time

from conftest import offline

SHA = "0123456789abcdef0123456789abcdef01234567"


def cache_snapshot(hf_home, repo_id, files: dict) -> None:
    """Lay out ``files`` as the Hugging Face cache stores a downloaded snapshot of ``repo_id``."""
    repo = hf_home / "hub" / ("models--" + repo_id.replace("/", "--"))
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(SHA)
    snap = repo / "snapshots" / SHA
    snap.mkdir(parents=True)
    for name, text in files.items():
        (snap / name).write_text(text)


def resolve(hf_home, repo_id):
    env = {"HF_HOME": str(hf_home), "PATH": "/usr/bin:/bin"}
    code = f"from embstudy import hub; print(hub.resolve({repo_id!r}))"
    start = time.monotonic()
    done = subprocess.run(offline([sys.executable, "-c", code]), env=env, capture_output=True, text=True, timeout=60)
    return done, time.monotonic() - start


def test_cached_checkpoint_is_used_without_network(tmp_path):
    cache_snapshot(tmp_path, "flaubert/flaubert_base_cased", {"config.json": json.dumps({"model_type": "flaubert"})})
    done, _ = resolve(tmp_path, "flaubert/flaubert_base_cased")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith(f"snapshots/{SHA}")


def test_uncached_checkpoint_offline_fails_fast_with_one_line_advice(tmp_path):
    done, seconds = resolve(tmp_path, "camembert-base")
    assert done.returncode != 0 and seconds < 30
    message = done.stderr.strip()
    assert "\n" not in message and "Traceback" not in message
    for hint in ("camembert-base", "HF_HOME", "HF_HUB_OFFLINE=1", "demo profile"):
        assert hint in message
