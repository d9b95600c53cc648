"""reader: Webis-CLS-10 from a folder or a tarball, FLUE's rules and cleaning, one-line errors."""
from __future__ import annotations

import re
import tarfile
import tempfile
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from embstudy import reader
from embstudy.reader import ReviewFormatError

HEADER = '<?xml version="1.0" encoding="UTF-8"?>\n'
TAG = re.compile(r"<[A-Za-z/!?][^<>]*>")  # what counts as a stray tag left in a text
FILES = [f"{d}/{s}.review" for d in ("books", "dvd", "music") for s in ("train", "test", "unlabeled")]


def item(text: str = "Très bon livre.", rating: str | None = "5.0", *, compact: bool = False) -> str:
    """One item, one field per line (with a <location\\n/> tag) or run together as in the real files."""
    fields = ["<category>Livres</category>", f"<rating>{rating}</rating>" if rating is not None else "",
              "<asin>2070612881</asin>", "<url>http://www.amazon.fr/x</url>", f"<text>{text}</text>",
              "<title>Harry Potter</title>", "<summary>Génial</summary>", "<location\n/>",
              "<date>12 mars 2005</date>"]
    return "<item>" + ("" if compact else "\n").join(f for f in fields if f) + "</item>\n"


def review_file(*items: str) -> str:
    return HEADER + "\n".join(items)


def write_layout(root: Path, files: dict[str, str | bytes], language: str = "fr") -> Path:
    """Write ``{"books/train.review": text or bytes}`` under ``root/cls-acl10-unprocessed/<language>/``."""
    for rel, content in files.items():
        path = root / "cls-acl10-unprocessed" / language / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    return root


def make_tar(root: Path, target: Path) -> Path:
    with tarfile.open(target, "w:gz") as tar:
        tar.add(root / "cls-acl10-unprocessed", arcname="cls-acl10-unprocessed")
    return target


def layout(**overrides: str | bytes) -> dict[str, str | bytes]:
    """All nine files with one positive and one negative review each; ``books_train=...`` replaces a file."""
    files = {rel: review_file(item(f"Bien : {rel}", "4.0"), item(f"Mauvais : {rel}", "1.0")) for rel in FILES}
    files.update({k.replace("_", "/") + ".review": v for k, v in overrides.items()})
    return files


BOOKS_TRAIN = review_file(
    item("Un livre &quot;magique&quot; &amp; drôle,\nsur deux lignes.", "5.0"),
    item("Bof.", "3.0"),  # rating 3: left out, as FLUE
    item("Ennuyeux<br />à mourir :\r\n\tvoir http://www.example.com/page et www.amazon.fr", "2.0",
         compact=True),
    item("Cafe\u0301 cre\u0300me &#39;ok&#39;", "4.0"),
)


def test_flue_rules_fields_and_cleaning(tmp_path):
    frame = reader.read_reviews(write_layout(tmp_path, layout(books_train=BOOKS_TRAIN)))
    books = frame[(frame.split == "train") & (frame.domain == "books")]
    assert books.text.tolist() == ['Un livre "magique" & drôle, sur deux lignes.',
                                   "Ennuyeux à mourir : voir et", "Café crème 'ok'"]
    assert books.label.tolist() == [1, 0, 1]
    assert books.rating.tolist() == [5.0, 2.0, 4.0]
    assert frame.attrs["skipped"]["train"] == {"neutral": 1, "empty": 0}
    assert len(frame) == 3 + 8 * 2  # every other file holds two reviews
    assert list(frame.columns) == ["split", "domain", "text", "label", "rating"]
    assert frame.groupby("split", sort=False).size().index.tolist() == ["train", "test", "unlabeled"]
    assert frame[frame.split == "train"].domain.tolist() == ["books"] * 3 + ["dvd"] * 2 + ["music"] * 2


def test_unlabeled_keeps_every_review_with_label_minus_one(tmp_path):
    unlabeled = review_file(item("Moyen.", "3.0"), item("Sans note.", None), item("Note bizarre.", "abc"),
                            item("<br/>", "5.0"))
    root = write_layout(tmp_path, layout(music_unlabeled=unlabeled))
    frame = reader.read_reviews(root, splits=("unlabeled",))
    music = frame[frame.domain == "music"]
    assert music.text.tolist() == ["Moyen.", "Sans note.", "Note bizarre."]
    assert (frame.label == -1).all() and set(frame.split) == {"unlabeled"}
    assert music.rating.tolist()[0] == 3.0 and music.rating.isna().tolist() == [False, True, True]
    assert frame.attrs["skipped"]["unlabeled"] == {"neutral": 0, "empty": 1}  # the text was only a tag


def test_folder_layout_folder_and_tarball_agree(tmp_path):
    root = write_layout(tmp_path / "data", layout(books_train=BOOKS_TRAIN))
    tarball = make_tar(root, tmp_path / "cls.tar.gz")
    frames = [reader.read_reviews(s) for s in (root, root / "cls-acl10-unprocessed", tarball, str(tarball))]
    for other in frames[1:]:
        pd.testing.assert_frame_equal(frames[0], other)


@pytest.mark.parametrize("raw, clean", [
    ("voir http://a.fr/x?y=1 et https://b.com et www.c.org/d.", "voir et et"),
    ("un<br/>deux<p class='x'>trois</p>", "un deux trois"),
    ("a\r\nb\tc\n\nd", "a b c d"),
    ("e\u0301te\u0301", "\u00e9t\u00e9"),  # decomposed é -> composed
    ("&amp; &quot;x&quot; &#39;y&#39; &eacute;", "& \"x\" 'y' é"),
    ("&lt;b&gt;gras&lt;/b&gt;", "gras"),  # escaped tags are tags too
    ("  trop   d'espaces  ", "trop d'espaces"),
    ("note < 3 et > 1", "note < 3 et > 1"),  # comparison signs are not tags
    ("<a<b>>", ""),  # removing one tag exposes another
])
def test_clean_text(raw, clean):
    assert reader.clean_text(raw) == clean


@pytest.mark.parametrize("content, message", [
    (review_file(item("ok", "5.0"), item("sans note", None)), r"item 2: no <rating>"),
    (review_file(item("ok", "abc")), r"item 1: rating 'abc' is not a number"),
    (review_file(item("ok", "7.0")), r"item 1: rating '7.0' is outside 1-5"),
    (review_file(item("ok"), item("ok")[:-9]), r"item 2: truncated item \(no </item>\)"),
    (review_file(item("ok"), item("ok")[:-9], item("ok")), r"item 2: truncated item"),
    (review_file(item("ok"), "<text>hors item</text>\n"), r"after the last item: text outside <item>"),
    (review_file(item("ok").replace("<title>", "en vrac<title>")), r"item 1: text outside any field"),
    (review_file("<item><rating>5.0</rating></item>"), r"item 1: no <text> field"),
    (review_file(item("ok"), item("a").replace("<asin>", "<rating>1</rating><asin>")),
     r"item 2: duplicate <rating>"),
    (review_file(item("ok")).encode() + item("\u00e9").encode("latin-1"), r"item 2: invalid UTF-8 at byte"),
])
def test_bad_items_name_file_and_item(tmp_path, content, message):
    message = r"^cls-acl10-unprocessed/fr/dvd/train\.review: " + message
    root = write_layout(tmp_path, layout(dvd_train=content))
    for source in (root, make_tar(root, tmp_path / "cls.tar.gz")):
        with pytest.raises(ReviewFormatError, match=message) as e:
            reader.read_reviews(source)
        assert "\n" not in str(e.value)


def test_missing_files_are_listed(tmp_path):
    files = {k: v for k, v in layout().items() if k not in ("dvd/test.review", "music/test.review")}
    files = {k: v for k, v in files.items() if not k.startswith("books/")}
    tarball = make_tar(write_layout(tmp_path, files), tmp_path / "cls.tar.gz")
    with pytest.raises(ReviewFormatError) as err:
        reader.read_reviews(tarball)
    assert str(err.value).startswith("cls.tar.gz: missing fr/books/train.review, fr/books/test.review, "
                                     "fr/dvd/test.review, fr/music/test.review, fr/books/unlabeled.review")
    with pytest.raises(ReviewFormatError, match=r"^cls.tar.gz: missing fr/books/train.review \("):
        reader.read_reviews(tarball, splits=("train",))  # only what the asked splits need


def test_missing_source_says_how_to_get_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="`make data`.*demo profile"):
        reader.read_reviews(tmp_path / "nowhere.tar.gz")


def test_unreadable_archive_and_unknown_split(tmp_path):
    (tmp_path / "broken.tar.gz").write_bytes(b"\x1f\x8b\x08\x00 not really gzip")
    with pytest.raises(ReviewFormatError, match="^broken.tar.gz: not a readable tar archive"):
        reader.read_reviews(tmp_path / "broken.tar.gz")
    with pytest.raises(ValueError, match="unknown split"):
        reader.read_reviews(tmp_path, splits=("dev",))


def test_header_is_optional_and_a_root_element_is_tolerated():
    data = ("<items>\n" + item("un") + "\n" + item("deux") + "</items>\n").encode()
    assert [r[2] for r in reader.file_rows(data, "f", "train", "books")] == ["un", "deux"]
    assert [r[2] for r in reader.file_rows(item("seul").encode(), "f", "train", "books")] == ["seul"]


# ---- properties: whatever the bytes, the reader returns reviews obeying FLUE's rules or a ReviewFormatError.

def check(data: bytes, split: str) -> None:
    try:
        rows = reader.file_rows(data, "x.review", split, "books")
    except ReviewFormatError as e:
        assert str(e).startswith("x.review: ") and "\n" not in str(e)
        return
    for _, domain, text, label, rating in rows:
        assert domain == "books" and text and text == text.strip()
        assert not re.search(r"\s\s|[^\S ]", text), "only single plain spaces"
        assert not TAG.search(text), text
        if split == "unlabeled":
            assert label == -1
        else:
            assert label in (0, 1) and label == (int(rating) > 3) and int(rating) != 3


RATINGS = st.sampled_from(["5.0", "4.0", "1.0", "2.0", "3.0", "4.5", "2.9", " 5 "] * 3
                          + ["abc", "nan", "", "1e3"])
TEXTS = st.lists(st.one_of(st.text(max_size=8), st.sampled_from(
    ["&amp;", "&lt;br&gt;", "&#233;", "<br/>", "<p>", "\n", "\r\n\t", "http://x.fr/a", " www.y.z ", "e\u0301",
     "<", ">", "</b>", " ", "« »", "l'été"])), max_size=8).map("".join)
FLAWS = st.sampled_from([None] * 30 + ["no rating", "no text", "stray text", "duplicate", "unclosed", "cut"])


@st.composite
def review_texts(draw) -> str:
    """Mostly well-formed files with random texts and ratings; some items flawed, some files cut anywhere."""
    items = []
    for _ in range(draw(st.integers(0, 4))):
        rating, text, flaw = draw(RATINGS), draw(TEXTS), draw(FLAWS)
        fields = [f"<rating>{rating}</rating>" * (flaw != "no rating"),
                  f"<text>{text}</text>" * (flaw != "no text"),
                  "<title>t</title>", "<location\n/>", "stray" * (flaw == "stray text"),
                  "<summary>s</summary>" * (1 + (flaw == "duplicate"))]
        body = "<item>" + draw(st.sampled_from(["", "\n"])).join(fields) + "</item>" * (flaw != "unclosed")
        items.append(body[:draw(st.integers(0, len(body)))] if flaw == "cut" else body)
    separator = draw(st.sampled_from(["\n\n", "\n"]))
    return draw(st.sampled_from([HEADER, "", "<items>\n"])) + separator.join(items)


@settings(max_examples=300, deadline=None)
@given(review_texts(), st.sampled_from(["train", "unlabeled"]))
def test_random_structures_follow_flue_rules_or_raise(text, split):
    check(text.encode("utf-8", "surrogatepass"), split)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300), st.sampled_from(["train", "test", "unlabeled"]))
def test_random_bytes_follow_flue_rules_or_raise(data, split):
    check(data, split)


@settings(max_examples=100, deadline=None)
@given(st.binary(min_size=1, max_size=300))
def test_random_archives_raise_review_format_error(data):
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "x.tar.gz").write_bytes(data)
        with pytest.raises(ReviewFormatError, match=r"^x\.tar\.gz: "):
            reader.read_reviews(Path(tmp) / "x.tar.gz")


def test_cut_archives_read_whole_or_raise(tmp_path):
    """An archive cut anywhere: a ReviewFormatError, or all of it when only the padding was lost."""
    whole = make_tar(write_layout(tmp_path / "d", layout(books_train=BOOKS_TRAIN)), tmp_path / "w.tar.gz")
    full, data = reader.read_reviews(whole), whole.read_bytes()
    for cut in range(0, len(data), 5):
        (tmp_path / "cut.tar.gz").write_bytes(data[:cut])
        try:
            frame = reader.read_reviews(tmp_path / "cut.tar.gz")
        except ReviewFormatError:
            continue
        pd.testing.assert_frame_equal(frame, full)


def test_each_language_reads_its_own_part(tmp_path):
    """Webis-CLS-10 holds de, en, fr and jp side by side; data.language picks one, from a folder or a tarball."""
    root = write_layout(tmp_path / "cls", layout())
    write_layout(root, {rel: review_file(item(f"Good: {rel}", "5.0"), item(f"Bad: {rel}", "2.0")) for rel in FILES},
                 language="en")
    tarball = make_tar(root, tmp_path / "cls.tar.gz")
    for source in (root, tarball):
        en, fr = reader.read_reviews(source, "en"), reader.read_reviews(source, "fr")
        assert en["text"].str.startswith(("Good", "Bad")).all() and fr["text"].str.startswith(("Bien", "Mauvais")).all()
        assert len(en) == len(fr) == 18
    with pytest.raises(ReviewFormatError, match=r"missing de/books/train.review, de/dvd/train.review"):
        reader.read_reviews(tarball, "de")
    with pytest.raises(ValueError, match="unknown language 'es'"):
        reader.read_reviews(tarball, "es")


def test_japanese_lengths_count_characters_the_others_words():
    texts = pd.Series(["とても良い本です。", "un très bon livre"])
    assert reader.lengths(texts, "jp").tolist() == [9, 17] and reader.length_unit("jp") == "characters"
    assert reader.lengths(texts, "fr").tolist() == [1, 4] and reader.length_unit("de") == "words"
