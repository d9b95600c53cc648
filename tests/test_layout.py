"""The repository's shape: dvc.yaml and embstudy.paths agree, every stage has its module."""
import re
import subprocess

import yaml

from embstudy import params, paths

STAGES = yaml.safe_load((paths.ROOT / "dvc.yaml").read_text())["stages"]


def test_each_stage_runs_its_own_module_and_reads_its_own_params():
    for name, stage in STAGES.items():
        body = stage.get("do", stage)
        assert body["cmd"].startswith(f"python -m embstudy.{name}"), name
        assert f"code/embstudy/{name}.py" in body["deps"], name
        assert (paths.ROOT / "code" / "embstudy" / f"{name}.py").exists(), name


def test_stage_outputs_are_where_paths_says():
    model = "camembert"
    expected = {
        "synth": paths.SYNTH_TARBALL.parent,
        "prepare": paths.CORPUS.parent,
        "pretrain": paths.pretrained(model),
        "tokenize": paths.tokens(model),
        "finetune": paths.finetuned(model),
        "control": paths.control(model),
        "extract": paths.extracted(model),
        "probe": paths.probed(model),
        "summary": paths.summary(),
    }
    for name, folder in expected.items():
        outs = [o if isinstance(o, str) else next(iter(o)) for o in STAGES[name].get("do", STAGES[name])["outs"]]
        written = str(folder.relative_to(paths.ROOT)).replace(model, "${key}")
        assert outs == [written], name


def test_demo_source_is_the_synth_stage_output():
    assert paths.ROOT / params.load().data.source == paths.SYNTH_TARBALL


def test_metrics_are_committed_not_cached():
    text = (paths.ROOT / "dvc.yaml").read_text()
    for m in re.findall(r"- (metrics/\S+):\n\s+cache: (\w+)", text):
        assert m[1] == "false", m[0]


def test_every_committed_metrics_file_is_a_stage_output():
    """A file under metrics/ that no stage writes any more (a renamed or split stage's) would sit in the
    repository as if it were a result."""
    lock = yaml.safe_load((paths.ROOT / "dvc.lock").read_text())["stages"]
    written = {out["path"] for stage in lock.values() for out in stage.get("outs", [])}
    tracked = subprocess.run(["git", "ls-files", "metrics"], cwd=paths.ROOT, capture_output=True, text=True,
                             check=True).stdout.split()
    assert tracked and sorted(set(tracked) - written) == []
