"""Every path the pipeline and the book use, in one place (dvc.yaml restates them for DVC).

Stage outputs live under ``artifacts/`` (ignored by git, tracked by DVC);
small metrics and plot tables live under ``metrics/`` (committed, ``cache: false``).
"""
from pathlib import Path

from embstudy import variants

ROOT = Path(__file__).resolve().parents[2]
PARAMS = ROOT / "params.yaml"
ARTIFACTS = ROOT / "artifacts"
METRICS = ROOT / "metrics"

TARBALL = ROOT / "data" / "cls-acl10-unprocessed.tar.gz"  # the real corpus, from data.dvc
SYNTH_TARBALL = ARTIFACTS / "synth" / "cls-acl10-unprocessed.tar.gz"  # the demo corpus
CORPUS = ARTIFACTS / "prepare" / "cls"  # DatasetDict train/test/unlabeled of raw text
CHECKPOINTS = ROOT / "checkpoints"  # the demo's encoders, pre-trained here once and shipped (make encoders)
BENCH = ROOT / "bench"  # `make bench`: results.json and results.md (committed)


# File names inside a model's extract folder (extracted(model)), probe folder (probed(model)) and summary()
RUN_LIST, LAYERS, SENTENCES, HIST, TIMING = "run.json", "layers.csv", "sentences.csv", "hist.csv", "timing.json"
ACCURACY, CURVES, PREDICTIONS = "accuracy.csv", "curves.csv", "predictions.parquet"
CONES, SEPARATION = "cones.parquet", "separation.csv"
GEOMETRY_CI, PROBES_CI, CKA, CKA_MAP = "geometry.csv", "probes.csv", "cka.csv", "cka-map.csv"
FINETUNED_CI, CORRELATION = "finetuned.csv", "correlation.csv"
PREPARE_METRICS, SUMMARY_METRICS = METRICS / "prepare.json", METRICS / "summary.json"
CONTROL_RUN = "control"  # the control's fine-tuning run: its folder (control_finetuned) and metrics key


def pretrained(model: str) -> Path:
    """Checkpoint folder written by the pretrain stage (demo) for ``model``."""
    return ARTIFACTS / "pretrain" / model


def tokens(model: str) -> Path:
    """Tokenised DatasetDict for ``model`` (truncated, never padded)."""
    return ARTIFACTS / "tokenize" / model


def finetuned(model: str, seed: int | None = None) -> Path:
    """Folder of one fine-tuning run (seed): a checkpoint per kept epoch, ``epoch-1/``, ``epoch-2/``...
    Without ``seed``: the finetune stage's folder for ``model``, every seed's ``seed-<s>/`` and ``control/``."""
    folder = ARTIFACTS / "finetune" / model
    return folder if seed is None else folder / f"seed-{seed}"


def control(model: str) -> Path:
    """The control stage's folder for ``model``: :func:`control_init`."""
    return ARTIFACTS / "control" / model


def control_init(model: str) -> Path:
    """The control encoder of ``model``: random weights, the model's tokenizer."""
    return control(model) / "init"


def control_finetuned(model: str) -> Path:
    """The control encoder fine-tuned like the others (by the finetune stage): ``epoch-1/``, ``epoch-2/``..."""
    return finetuned(model) / CONTROL_RUN


def hits(run: Path) -> Path:
    """In a fine-tuning run's folder (:func:`finetuned` with a seed, :func:`control_finetuned`): which test
    reviews its classifier got right after each epoch, (epochs, test reviews) int8."""
    return Path(run) / "hits.npy"


def extracted(model: str) -> Path:
    """Per-layer statistics and [CLS] vectors of every variant of ``model``."""
    return ARTIFACTS / "extract" / model


def probed(model: str) -> Path:
    """Probe accuracies, per-epoch curves, class cones and separation of ``model``."""
    return ARTIFACTS / "probe" / model


def summary() -> Path:
    """Intervals, CKA and correlations over every model, seed and variant (the summary stage)."""
    return ARTIFACTS / "summary"


def metrics(stage: str, model: str, suffix: str = ".json") -> Path:
    """Small committed metric or plot file, e.g. ``metrics/probe/camembert.json``."""
    return METRICS / stage / f"{model}{suffix}"


def finetune_metrics(model: str, suffix: str = ".json") -> Path:
    """Metrics (``.json``, keyed by run: ``seed-<s>``, ``control``) or per-epoch history (``-history.csv``,
    column ``run``) of every fine-tuning run of ``model``."""
    return metrics("finetune", model, suffix)


def cls_file(variant: str, seed: int | None) -> str:
    """A run's first-token vectors in its model's extract folder (``cls-epoch-2-s42.npz``)."""
    return f"cls-{variants.run_name(variant, seed)}.npz"
