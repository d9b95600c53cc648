"""Stage ``prepare``: Webis-CLS-10 ``.review`` files -> a shuffled ``datasets.DatasetDict``.

Reads the ``data.language`` part of ``data.source`` (the demo's synthetic French tarball, or the real one
from ``data.dvc``) with :mod:`embstudy.reader` and writes ``artifacts/prepare/cls``:
splits ``train``/``test``/``unlabeled`` with columns ``text``, ``label`` (1
positive, 0 negative, -1 unlabeled), ``domain`` and ``idx`` (position in the
split after shuffling with ``prepare.seed``, as the seed study did before taking
its first N). Later stages take the first N rows. Counts per split, domain and
label, and the mean length (words; characters for Japanese, which does not separate words by spaces) go to
``metrics/prepare.json``.

Run: ``python -m embstudy.prepare`` (or ``dvc repro prepare``).
"""
from __future__ import annotations

import pandas as pd
from datasets import Dataset, DatasetDict

from embstudy import files, paths, reader, stage

SPLITS = ("train", "test", "unlabeled")


def build(reviews: pd.DataFrame, seed: int) -> DatasetDict:
    """One shuffled Dataset per split; ``idx`` is the row's position after the shuffle."""
    splits = {}
    for split in SPLITS:
        frame = reviews.loc[reviews["split"] == split, ["text", "label", "domain"]].reset_index(drop=True)
        ds = Dataset.from_pandas(frame, preserve_index=False).shuffle(seed=seed).flatten_indices()
        splits[split] = ds.add_column("idx", list(range(len(ds))))
    return DatasetDict(splits)


def counts(corpus: DatasetDict, language: str) -> dict:
    """Reviews per split, domain and label, and the mean length: the corpus at a glance."""
    out = {}
    for split, ds in corpus.items():
        frame = ds.select_columns(["domain", "label"]).to_pandas()
        by = frame.groupby(["domain", "label"]).size()
        length = reader.lengths(pd.Series(ds["text"], dtype=object), language)
        out[split] = {
            "reviews": len(ds),
            f"mean_{reader.length_unit(language)}": round(float(length.mean()), 2) if len(ds) else 0.0,
            **{f"{d}_{'unlabeled' if lab < 0 else ('pos' if lab else 'neg')}": int(n) for (d, lab), n in by.items()},
        }
    return out


def main() -> None:
    p, logger = stage.start("prepare")
    source = paths.ROOT / p.data.source
    logger.info("reading %s (%s)", source, p.data.language)
    try:
        reviews = reader.read_reviews(source, p.data.language)
    except (reader.ReviewFormatError, reader.SourceMissingError) as e:
        raise stage.StageError(f"prepare: {e}") from None
    corpus = build(reviews, p.prepare.seed)
    for split, ds in corpus.items():
        logger.info("%s: %d reviews", split, len(ds))
    with files.atomic_dir(paths.CORPUS) as tmp:
        corpus.save_to_disk(str(tmp))
    files.write_json(paths.PREPARE_METRICS, counts(corpus, p.data.language))


if __name__ == "__main__":
    main()
