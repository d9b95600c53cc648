"""A small made-up English review corpus in the real Webis-CLS-10 layout, for the non-French pipeline tests.

``tarball()`` returns a ``cls-acl10-unprocessed.tar.gz`` holding ``en/{books,dvd,music}/{train,test,
unlabeled}.review``: a header line, then ``<item>`` blocks with a ``<rating>`` (1-2 negative, 4-5 positive, a
few 3s that the reader drops) and a ``<text>`` whose opinion words follow the rating. Seeded.
"""
from __future__ import annotations

import io
import random
import tarfile
from html import escape

SUBJECTS = {
    "books": ["This novel", "The plot", "The author's style", "This biography", "The ending"],
    "dvd": ["This film", "The direction", "The script", "This series", "The acting"],
    "music": ["This album", "The singer's voice", "This record", "The arrangement", "This song"],
}
OPINION = {5: ["brilliant", "moving", "superb", "gripping", "delightful"],
           1: ["boring", "disappointing", "dull", "tedious", "awful"]}
TEMPLATES = ["{S} is {A}.", "Honestly, {s} felt {A} from start to finish.", "I found {s} {A}; judge for yourself.",
             "A friend called it \"{A}\" and I agree: {A}!"]
FILLERS = ["Fast delivery.", "Fair price.", "The box was damaged, but never mind."]


def review(rng: random.Random, domain: str, rating: int) -> str:
    words = OPINION[5 if rating > 3 else 1] if rating != 3 else OPINION[5] + OPINION[1]
    sentences = [rng.choice(TEMPLATES).replace("{S}", s).replace("{s}", s.lower()).replace("{A}", rng.choice(words))
                 for s in rng.sample(SUBJECTS[domain], rng.randint(2, 3))]
    return " ".join(sentences + ([rng.choice(FILLERS)] if rng.random() < 0.5 else []))


def review_file(rng: random.Random, domain: str, n: int) -> bytes:
    items = []
    for _ in range(n):
        rating = rng.choice([1, 2, 4, 5, 1, 2, 4, 5, 3])
        items.append(f"<item>\n<rating>{rating}.0</rating>\n<title>t</title>\n"
                     f"<text>{escape(review(rng, domain, rating))}</text>\n</item>\n")
    return ('<?xml version="1.0"?>\n' + "".join(items)).encode()


def tarball(per_file: int = 40, language: str = "en", seed: int = 0) -> bytes:
    """The corpus as Webis-CLS-10's tarball: ``per_file`` items per (domain, split) file, ~1/9 of them 3-star."""
    rng, buf = random.Random(seed), io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for domain in SUBJECTS:
            for split in ("train", "test", "unlabeled"):
                data = review_file(rng, domain, per_file)
                info = tarfile.TarInfo(f"cls-acl10-unprocessed/{language}/{domain}/{split}.review")
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()
