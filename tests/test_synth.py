"""synth: a byte-reproducible corpus in the real layout, balanced, with the asked-for noise and difficulty."""
from __future__ import annotations

import io
import re
import tarfile

import pytest
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

from embstudy import params, reader, synth
from embstudy.params import Synth

SMALL = Synth(seed=5, labelled_per_class=40, unlabeled_per_domain=30, label_noise=0.1, negation_rate=0.15,
              contrast_rate=0.1)
NEGATED = re.compile(r"\b(n'est|ne sont|ne signe|je n'ai) (pas|jamais)\b", re.I)
CONTRAST = re.compile(r", mais |\. (Pourtant|En revanche|Cependant), ")


def texts(recs, split=None, domain=None):
    return [r["text"] for (d, s), rs in recs.items() for r in rs
            if split in (None, s) and domain in (None, d)]


@pytest.fixture(scope="module")
def small():
    return synth.corpus(SMALL)


def test_same_seed_same_bytes_other_seed_differs(small):
    blob = synth.build(small)
    assert synth.build(synth.corpus(SMALL)) == blob
    assert synth.build(synth.corpus(SMALL.model_copy(update={"seed": 6}))) != blob
    assert blob[:2] == b"\x1f\x8b" and blob[4:8] == bytes(4)  # gzip header without a time stamp
    with tarfile.open(fileobj=io.BytesIO(blob)) as tar:
        members = tar.getmembers()
    files = [m.name for m in members if m.isfile()]
    assert files == sorted(files) and len(files) == 9
    assert {(m.mtime, m.uid, m.gid, m.uname, m.gname) for m in members} == {(1262304000, 0, 0, "", "")}


def test_main_writes_the_tarball_atomically(tmp_path, monkeypatch, small):
    p = params.load()
    monkeypatch.setattr(synth.params, "load", lambda: p.model_copy(
        update={"data": p.data.model_copy(update={"synth": SMALL})}))
    monkeypatch.setattr(synth.paths, "SYNTH_TARBALL", tmp_path / "synth" / "cls.tar.gz")
    synth.main()
    assert (tmp_path / "synth" / "cls.tar.gz").read_bytes() == synth.build(small)
    assert [f.name for f in (tmp_path / "synth").iterdir()] == ["cls.tar.gz"]  # no temp file left


def test_reader_reads_it_back_balanced(tmp_path, small):
    (tmp_path / "cls.tar.gz").write_bytes(synth.build(small))
    frame = reader.read_reviews(tmp_path / "cls.tar.gz")
    sizes = frame.groupby(["split", "domain", "label"]).size()
    per_file = {"train": SMALL.labelled_per_class, "test": SMALL.labelled_per_class,
                "unlabeled": SMALL.unlabeled_per_domain}
    for (split, _, label), n in sizes.items():
        assert n == per_file[split], (split, label)
    assert len(sizes) == 3 * 2 * 2 + 3
    in_order = [t for s in reader.SPLITS for d in reader.DOMAINS for t in texts(small, s, d)]
    assert frame.text.tolist() == in_order  # exactly what was generated
    labelled = frame[frame.split != "unlabeled"]
    assert set(labelled.rating) <= {1.0, 2.0, 4.0, 5.0}
    assert (labelled.label == (labelled.rating > 3)).all()


def test_items_look_like_the_real_files(small):
    with tarfile.open(fileobj=io.BytesIO(synth.build(small))) as tar:
        raw = tar.extractfile("cls-acl10-unprocessed/fr/music/train.review").read().decode()
    assert raw.startswith('<?xml version="1.0" encoding="UTF-8"?>\n<item><category>Musique</category>')
    items = raw.split("\n\n")
    assert len(items) == 2 * SMALL.labelled_per_class
    for field in ("category", "rating", "asin", "url", "text", "title", "summary", "date"):
        assert all(f"<{field}>" in i and f"</{field}>" in i for i in items), field
    assert all("</url><text>" in i and "<location\n/>" in i for i in items)  # as FLUE's own regexes expect
    assert any("\n" in re.search(r"<text>(.*)</text>", i, re.S)[1] for i in items)  # texts span lines
    assert "&amp;" in raw  # « Zoé & les Orages »: entities escaped, the reader unescapes them


@pytest.mark.parametrize("noise", [0.0, 0.1, 0.25])
def test_realised_label_noise(noise):
    recs = synth.corpus(SMALL.model_copy(update={"label_noise": noise, "unlabeled_per_domain": 0}))
    flipped = {key: sum((r["rating"] > 3) != (r["polarity"] > 0) for r in rs) for key, rs in recs.items()}
    expected = round(noise * SMALL.labelled_per_class) * 2  # per class, two classes per file
    assert flipped == {key: 0 if key[1] == "unlabeled" else expected for key in recs}
    labelled = [r for (_, s), rs in recs.items() if s != "unlabeled" for r in rs]
    realised = sum((r["rating"] > 3) != (r["polarity"] > 0) for r in labelled) / len(labelled)
    assert realised == pytest.approx(noise, abs=0.5 / SMALL.labelled_per_class)


def test_negation_and_contrast_rates_are_honoured():
    def share(pattern, **rates):
        recs = synth.corpus(SMALL.model_copy(update={"unlabeled_per_domain": 0, **rates}))
        return sum(bool(pattern.search(t)) for t in texts(recs)) / len(texts(recs))

    assert share(NEGATED, negation_rate=0.0) == 0 and share(NEGATED, negation_rate=1.0) == 1
    assert share(CONTRAST, contrast_rate=0.0) == 0 and share(CONTRAST, contrast_rate=1.0) == 1
    assert 0.04 < share(CONTRAST, contrast_rate=0.1) < 0.2  # one turn at most per review


def test_domains_have_their_own_vocabulary(small):
    words = {d: set(re.findall(r"\w+", " ".join(texts(small, domain=d)).lower())) for d in synth.DOMAINS}
    for domain, spec in synth.DOMAINS.items():
        own = {f for a in (spec["positive"] + " " + spec["negative"]).split()
               for f in synth.forms(a).values() if " " not in f}
        others = set().union(*(w for d, w in words.items() if d != domain))
        assert len(own & words[domain]) > 15 and not own & others, domain
    shared = words["books"] & words["dvd"] & words["music"]
    assert len(shared) < 0.6 * min(map(len, words.values()))


def test_french_surface_and_lengths(small):
    reviews = texts(small)
    joined = " ".join(reviews)
    assert all(c in joined for c in "éèàçêœ«»'")
    sentences = [len(re.findall(r"[.!](?= [A-ZÀ-Ý]|$)", t)) for t in reviews]
    assert min(sentences) == 1 and max(sentences) >= 8
    assert all(t == reader.clean_text(t) for t in reviews)  # already clean: tokenizers see what was generated


def accuracy(s: Synth, language: str = "fr") -> float:
    """The yardstick: TF-IDF word 1-2 grams + logistic regression, train split -> test split. Japanese has no
    spaces, so character 1-3 grams stand for its words."""
    recs = synth.corpus(s.model_copy(update={"unlabeled_per_domain": 0}), language)
    data = {split: ([r["text"] for (_, sp), rs in recs.items() if sp == split for r in rs],
                    [r["rating"] > 3 for (_, sp), rs in recs.items() if sp == split for r in rs])
            for split in ("train", "test")}
    vec = TfidfVectorizer(analyzer="char", ngram_range=(1, 3)) if language == "jp" else TfidfVectorizer(
        ngram_range=(1, 2))
    model = LogisticRegression(max_iter=1000).fit(vec.fit_transform(data["train"][0]), data["train"][1])
    return model.score(vec.transform(data["test"][0]), data["test"][1])


def test_text_carries_the_label_below_the_noise_ceiling():
    base = SMALL.model_copy(update={"labelled_per_class": 100})
    hard = accuracy(base)
    assert 0.6 < hard < 1 - base.label_noise
    easy = accuracy(base.model_copy(update={"label_noise": 0.0, "negation_rate": 0.0, "contrast_rate": 0.0}))
    assert easy > hard + 0.05


# ---- English, German and Japanese (embstudy.phrasebook): the same recipe, their own words
LANGUAGES = ("en", "de", "jp")
NEGATED_IN = {"en": re.compile(r"\b(not|never)\b"), "de": re.compile(r"\bnicht\b"),
              "jp": re.compile(r"くない|ではない|なかった")}
CONTRAST_IN = {"en": re.compile(r", but |\. (Still|However), |, and yet "), "de": re.compile(r", (aber|doch) |\. Aber "),
               "jp": re.compile(r"が、|。(しかし|でも)、")}
SCRIPT = {"en": re.compile(r"^[\x20-\x7e“”]+$"), "de": re.compile(r"[äöüß]"), "jp": re.compile(r"^[^ a-z]+$")}


@pytest.mark.parametrize("language", LANGUAGES)
def test_another_language_in_its_own_folder_read_back_exactly(tmp_path, language):
    recs = synth.corpus(SMALL, language)
    blob = synth.build(recs, language)
    assert synth.build(synth.corpus(SMALL, language), language) == blob
    (tmp_path / "cls.tar.gz").write_bytes(blob)
    frame = reader.read_reviews(tmp_path / "cls.tar.gz", language)
    assert frame.text.tolist() == [t for s in reader.SPLITS for d in reader.DOMAINS for t in texts(recs, s, d)]
    assert all(t == reader.clean_text(t) for t in frame.text)
    with pytest.raises(reader.ReviewFormatError, match="missing fr/books/train.review"):  # only its own folder is there
        reader.read_reviews(tmp_path / "cls.tar.gz", "fr")
    with tarfile.open(fileobj=io.BytesIO(blob)) as tar:
        raw = tar.extractfile(f"cls-acl10-unprocessed/{language}/dvd/test.review").read().decode()
    host = {"en": "amazon.com", "de": "amazon.de", "jp": "amazon.co.jp"}[language]
    assert f"<url>http://www.{host}/product-reviews/B000" in raw
    assert all(SCRIPT[language].search(t) for t in frame.text) if language != "de" else \
        sum(bool(SCRIPT["de"].search(t)) for t in frame.text) > len(frame) / 2  # umlauts in most German reviews
    units = reader.lengths(frame.text, language)
    assert (units == (frame.text.str.len() if language == "jp" else frame.text.str.split().str.len())).all()


@pytest.mark.parametrize("language", LANGUAGES)
def test_another_language_honours_negation_contrast_and_noise(language):
    def share(pattern, **rates):
        recs = synth.corpus(SMALL.model_copy(update={"unlabeled_per_domain": 0, **rates}), language)
        return sum(bool(pattern.search(t)) for t in texts(recs)) / len(texts(recs))

    assert share(NEGATED_IN[language], negation_rate=0.0) == 0 and share(NEGATED_IN[language], negation_rate=1.0) == 1
    assert share(CONTRAST_IN[language], contrast_rate=0.0) == 0 and share(CONTRAST_IN[language], contrast_rate=1.0) == 1
    recs = synth.corpus(SMALL.model_copy(update={"unlabeled_per_domain": 0}), language)
    flipped = sum((r["rating"] > 3) != (r["polarity"] > 0) for rs in recs.values() for r in rs)
    assert flipped == 6 * 2 * round(SMALL.label_noise * SMALL.labelled_per_class)  # 6 labelled files, as French
    base = SMALL.model_copy(update={"labelled_per_class": 100})
    hard = accuracy(base, language)
    easy = accuracy(base.model_copy(update={"label_noise": 0.0, "negation_rate": 0.0, "contrast_rate": 0.0}),
                     language)
    assert 0.6 < hard < 1 - base.label_noise and easy > hard + 0.05, (hard, easy)
