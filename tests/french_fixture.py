"""A small made-up French review corpus for the encoder tests (vocab, pretrain, finetune).

Same layout as ``artifacts/prepare/cls``: a DatasetDict train/test/unlabeled with columns
text, label (-1 when unlabeled), domain, idx. The text is full of accents, « » quotes and
apostrophes (straight and curly), and the label follows the opinion words, so a classifier can
learn it. Seeded: same arguments, same corpus.
"""
from __future__ import annotations

import random

from datasets import Dataset, DatasetDict

SUBJECTS = {
    "books": ["Ce roman", "Ce livre", "L'intrigue", "Le style de l’auteur", "Cette biographie"],
    "dvd": ["Ce film", "La mise en scène", "Le scénario", "Cette série", "L’interprétation"],
    "music": ["Cet album", "La voix du chanteur", "Ce disque", "L'orchestration", "Cette chanson"],
}
OPINION = {
    1: ["génial", "émouvant", "très réussi", "magnifique", "passionnant", "drôle", "touchant", "superbe"],
    0: ["ennuyeux", "décevant", "raté", "médiocre", "pénible", "lassant", "creux", "épouvantable"],
}
TEMPLATES = [
    "{S} est {A}.",
    "{S} m'a semblé {A}, et franchement « {A} » est le mot juste.",
    "J’ai trouvé que {s} était {A} ; à vous de voir.",
    "Après deux écoutes ou lectures, {s} reste {A}.",
    "Un critique l'a qualifié de « {A} », et je suis d'accord : {A} du début à la fin !",
    "Où est passée la qualité d'antan ? Ici, c'est {A}.",
    "Reçu hier, déjà fini : {A}, vraiment {A}.",
]
FILLERS = ["Livraison rapide.", "Prix correct, ça se discute.", "Noël approche, pensez-y.",
           "Emballage abîmé, mais peu importe.", "Mon frère l'a acheté aussi."]


def review(rng: random.Random, domain: str, label: int) -> str:
    """One review: a few opinion sentences of the given polarity plus neutral fillers."""
    sentences = []
    for _ in range(rng.randint(2, 4)):
        subject = rng.choice(SUBJECTS[domain])
        adjective = rng.choice(OPINION[label])
        text = rng.choice(TEMPLATES).replace("{S}", subject).replace("{s}", subject.lower())
        sentences.append(text.replace("{A}", adjective))
    if rng.random() < 0.5:
        sentences.insert(rng.randrange(len(sentences) + 1), rng.choice(FILLERS))
    return " ".join(sentences)


def split(rng: random.Random, n: int, labelled: bool) -> Dataset:
    rows = {"text": [], "label": [], "domain": [], "idx": []}
    for i in range(n):
        domain, label = rng.choice(list(SUBJECTS)), rng.randint(0, 1)
        rows["text"].append(review(rng, domain, label))
        rows["label"].append(label if labelled else -1)
        rows["domain"].append(domain)
        rows["idx"].append(i)
    return Dataset.from_dict(rows)


def corpus(n_train: int = 200, n_test: int = 100, n_unlabeled: int = 300, seed: int = 0) -> DatasetDict:
    """The fixture corpus, same columns and split names as the prepare stage's output."""
    rng = random.Random(seed)
    return DatasetDict(train=split(rng, n_train, True), test=split(rng, n_test, True),
                       unlabeled=split(rng, n_unlabeled, False))
