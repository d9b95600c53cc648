"""prepare: schema, shuffling as the seed study did, sizes and counts."""
import pandas as pd
import pytest

from embstudy import prepare


def reviews(n=30):
    rows = []
    for split in prepare.SPLITS:
        for i in range(n):
            label = -1 if split == "unlabeled" else i % 2
            rows.append({"split": split, "domain": ("books", "dvd", "music")[i % 3], "text": f"{split} avis {i}",
                         "label": label})
    return pd.DataFrame(rows)


def test_schema_sizes_and_idx():
    corpus = prepare.build(reviews(), seed=42)
    assert set(corpus) == set(prepare.SPLITS)
    for split, ds in corpus.items():
        assert set(ds.column_names) == {"text", "label", "domain", "idx"}
        assert len(ds) == 30 and ds["idx"] == list(range(30))
        assert all(t.startswith(split) for t in ds["text"])  # no review crossed splits


def test_shuffle_is_seeded_and_keeps_every_review():
    a, b, c = (prepare.build(reviews(), seed=s)["train"]["text"] for s in (42, 42, 7))
    assert a == b and a != c
    assert sorted(a) == sorted(f"train avis {i}" for i in range(30))
    assert a != [f"train avis {i}" for i in range(30)]  # shuffled, as the seed took its first N after a shuffle


def test_counts_per_split_domain_label():
    got = prepare.counts(prepare.build(reviews(), seed=0), "fr")
    assert got["train"]["reviews"] == 30
    assert got["train"]["books_pos"] + got["train"]["books_neg"] == 10
    assert got["unlabeled"]["music_unlabeled"] == 10
    assert got["test"]["mean_words"] == pytest.approx(3.0)
