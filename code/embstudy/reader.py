"""Read one language of Webis-CLS-10 (French: FLUE-CLS) from its tarball or an unpacked folder.

Reads ``cls-acl10-unprocessed/<language>/{books,dvd,music}/{train,test,unlabeled}.review`` (language
``de``, ``en``, ``fr`` or ``jp``): a header
line, then ``<item>`` blocks of ``<field>value</field>`` (not valid XML: parsed with regexes).
FLUE's rules: label 1 if int(rating) > 3, 0 if < 3, rating-3 reviews dropped; every unlabeled
review kept with label -1. The text is the ``<text>`` field cleaned by :func:`clean_text`.
Writes nothing; the prepare stage calls ``read_reviews(source, language)``.
"""
from __future__ import annotations

import html
import logging
import re
import tarfile
import unicodedata
import zlib
from pathlib import Path

import pandas as pd

log = logging.getLogger("embstudy.reader")

LANGUAGES = ("de", "en", "fr", "jp")
DOMAINS = ("books", "dvd", "music")
SPLITS = ("train", "test", "unlabeled")
TOP = "cls-acl10-unprocessed"
COLUMNS = ["split", "domain", "text", "label", "rating"]
MEMBER = re.compile(r"(?:^|/)(de|en|fr|jp)/(books|dvd|music)/(train|test|unlabeled)\.review$")
FIELD = re.compile(r"<(\w+)\s*/>|<(\w+)>(.*?)</\2>", re.S)  # <location\n/> or <name>value</name>
WRAPPER = re.compile(r"<(?!/?item>)[^<>]*>")  # a root element such as <items> may wrap the items
URL = re.compile(r"\b(?:https?://|www\.)\S+", re.I)
TAG = re.compile(r"<[A-Za-z/!?][^<>]*>")


class ReviewFormatError(ValueError):
    """A .review file or archive that breaks the format; the one-line message names file and item."""


class SourceMissingError(FileNotFoundError):
    """``data.source`` does not exist; the message says how to get it."""


def clean_text(text: str) -> str:
    """FLUE's cleaning: entities decoded, NFC, one line, no URLs or stray tags, single spaces."""
    text = re.sub(r"\s", " ", unicodedata.normalize("NFC", html.unescape(text)))
    previous = None
    while text != previous:  # removing a tag or URL can expose another one
        previous, text = text, URL.sub(" ", TAG.sub(" ", text))
    return re.sub(" {2,}", " ", text).strip()


def length_unit(language: str) -> str:
    """What a review's length counts: words, or characters where spaces do not separate words (Japanese)."""
    return "characters" if language == "jp" else "words"


def lengths(texts: pd.Series, language: str) -> pd.Series:
    """Each text's length in :func:`length_unit`."""
    return texts.str.len() if length_unit(language) == "characters" else texts.str.split().str.len()


def _snip(text: str) -> str:
    return repr(" ".join(text.split())[:40])


def _fields(body: str, name: str, k: int) -> dict[str, str]:
    fields = {}
    for m in FIELD.finditer(body):
        key, value = (m[1], "") if m[1] else (m[2], m[3])
        if key in fields:
            raise ReviewFormatError(f"{name}: item {k}: duplicate <{key}>")
        fields[key] = value
    rest = FIELD.sub("", body)
    if rest.strip():
        raise ReviewFormatError(f"{name}: item {k}: text outside any field: {_snip(rest)}")
    if "text" not in fields:
        raise ReviewFormatError(f"{name}: item {k}: no <text> field")
    return fields


def parse_items(text: str, name: str) -> list[dict[str, str]]:
    """The raw fields of every ``<item>`` of a .review file; a first line without ``<item>`` is a header."""
    eol = text.find("\n")
    header = text if eol < 0 else text[:eol]
    pos = 0 if "<item>" in header else len(header) + 1
    items = []
    while True:
        start = text.find("<item>", pos)
        gap = WRAPPER.sub("", text[pos:] if start < 0 else text[pos:start])
        if gap.strip():
            where = f"before item {len(items) + 1}" if start >= 0 else "after the last item"
            raise ReviewFormatError(f"{name}: {where}: text outside <item>: {_snip(gap)}")
        if start < 0:
            return items
        end, following = text.find("</item>", start), text.find("<item>", start + 6)
        if end < 0 or 0 <= following < end:
            raise ReviewFormatError(f"{name}: item {len(items) + 1}: truncated item (no </item>)")
        items.append(_fields(text[start + 6:end], name, len(items) + 1))
        pos = end + 7


def _rating(raw: str | None, name: str, k: int) -> float:
    if raw is None:
        raise ReviewFormatError(f"{name}: item {k}: no <rating>")
    try:
        value = float(raw.strip())
    except ValueError:
        raise ReviewFormatError(f"{name}: item {k}: rating {raw.strip()[:20]!r} is not a number") from None
    if not 1 <= value <= 5:
        raise ReviewFormatError(f"{name}: item {k}: rating {raw.strip()[:20]!r} is outside 1-5")
    return value


def _decode(data: bytes, name: str) -> str:
    try:
        return data.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as e:
        k = data.count(b"<item>", 0, e.start)  # the item the bad byte falls in
        where = f"item {k}" if k else "header"
        raise ReviewFormatError(f"{name}: {where}: invalid UTF-8 at byte {e.start}") from None


def file_rows(data: bytes, name: str, split: str, domain: str, skipped: dict | None = None) -> list[tuple]:
    """(split, domain, text, label, rating) for each kept review of one .review file's bytes (FLUE's rules);
    ``skipped`` counts the 3-star ("neutral") and empty-text reviews left out."""
    skipped = {"neutral": 0, "empty": 0} if skipped is None else skipped
    rows = []
    for k, fields in enumerate(parse_items(_decode(data, name), name), 1):
        if split == "unlabeled":  # kept whatever the rating says, as FLUE's pre-training text
            try:
                rating, label = _rating(fields.get("rating"), name, k), -1
            except ReviewFormatError:
                rating, label = float("nan"), -1
        else:
            rating = _rating(fields.get("rating"), name, k)
            label = 1 if int(rating) > 3 else 0 if int(rating) < 3 else None
        text = clean_text(fields["text"])
        if label is None or not text:
            skipped["neutral" if label is None else "empty"] += 1
            continue
        rows.append((split, domain, text, label, rating))
    return rows


def _read_tar(path: Path, language: str, wanted: list[tuple[str, str]]) -> dict[tuple[str, str], bytes]:
    found = {}
    try:
        with tarfile.open(path, "r:*") as tar:
            for member in tar:  # streamed in archive order, nothing extracted to disk
                m = MEMBER.search(member.name)
                key = m and (m[2], m[3])
                if m and m[1] == language and member.isfile() and key in wanted and key not in found:
                    found[key] = tar.extractfile(member).read()
    except (tarfile.TarError, OSError, EOFError, zlib.error) as e:
        why = " ".join(str(e).split())
        raise ReviewFormatError(f"{path.name}: not a readable tar archive ({why})") from None
    return found


def _read_dir(path: Path, language: str, wanted: list[tuple[str, str]]) -> dict[tuple[str, str], bytes]:
    root = path / TOP if (path / TOP).is_dir() else path  # the folder holding the layout, or the layout
    files = {(d, s): root / language / d / f"{s}.review" for d, s in wanted}
    return {key: f.read_bytes() for key, f in files.items() if f.is_file()}


def read_reviews(source: str | Path, language: str = "fr", splits: tuple[str, ...] = SPLITS) -> pd.DataFrame:
    """One row per kept review of ``language``: split, domain, text, label (1/0, -1 unlabeled), rating; in
    file order."""
    source, unknown = Path(source), sorted(set(splits) - set(SPLITS))
    if unknown:
        raise ValueError(f"unknown split(s) {unknown}; expected some of {SPLITS}")
    if language not in LANGUAGES:
        raise ValueError(f"unknown language {language!r}; Webis-CLS-10 has {LANGUAGES}")
    if not source.exists():
        raise SourceMissingError(f"{source}: not found; get the real corpus with `make data` (it "
                                 "downloads it, or records one put there by hand) or use the demo profile (`dvc repro synth` writes its synthetic corpus)")
    wanted = [(d, s) for s in splits for d in DOMAINS]
    found = (_read_dir if source.is_dir() else _read_tar)(source, language, wanted)
    missing = [f"{language}/{d}/{s}.review" for d, s in wanted if (d, s) not in found]
    if missing:
        raise ReviewFormatError(f"{source.name}: missing {', '.join(missing)} (expected under {TOP}/)")
    rows, skipped = [], {s: {"neutral": 0, "empty": 0} for s in splits}
    for domain, split in wanted:
        name = f"{TOP}/{language}/{domain}/{split}.review"
        rows += file_rows(found[domain, split], name, split, domain, skipped[split])
    frame = pd.DataFrame(rows, columns=COLUMNS).astype({"label": "int64", "rating": "float64"})
    frame.attrs["skipped"] = skipped
    log.info("read %d reviews from %s; skipped %s", len(frame), source, skipped)
    return frame
