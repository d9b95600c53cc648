"""Reproducibility promises: a collaborator pulls results without recomputing; same inputs, same outputs."""
import json
import subprocess

from conftest import run


def git(root, *args):
    subprocess.run(["git", *args], cwd=root, check=True, capture_output=True)


def test_push_then_fresh_clone_pull_needs_no_rerun(micro_repo, tmp_path):
    remote = tmp_path / "remote"
    assert run(["dvc", "remote", "add", "-d", "shared", str(remote)], micro_repo).returncode == 0
    pushed = run(["dvc", "push"], micro_repo, timeout=300)
    assert pushed.returncode == 0, pushed.stderr
    git(micro_repo, "add", "-A")
    git(micro_repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "results")

    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(micro_repo), str(clone))
    pulled = run(["dvc", "pull", "dvc.yaml"], clone, timeout=300)  # the pipeline; data.dvc is unfetched in the demo
    assert pulled.returncode == 0, pulled.stderr
    status = run(["dvc", "status", "--json", "dvc.yaml"], clone, timeout=120)
    assert json.loads(status.stdout) == {}
    again = run(["dvc", "repro"], clone, timeout=120)
    assert again.returncode == 0 and "Running stage" not in again.stdout
    for rel in ("metrics/probe/camembert.json", "artifacts/extract/flaubert"):
        assert (clone / rel).exists()
