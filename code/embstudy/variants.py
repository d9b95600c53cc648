"""The names of the encoders the study reads: built, parsed and ordered here and nowhere else.

A *variant* says where an encoder stands: ``pretrained`` (the model's own weights), ``random`` (the
control: the same architecture with random weights), ``epoch-k`` (fine-tuned from ``pretrained`` for k
epochs; also the name of that checkpoint's folder) and ``random-epoch-k`` (the control fine-tuned). A *run*
is a variant and, once fine-tuned, its seed: ``epoch-2-s42`` in file names and metrics keys.
"""
from __future__ import annotations

PRETRAINED, RANDOM = "pretrained", "random"


def epoch(k: int, control: bool = False) -> str:
    """The variant fine-tuned for ``k`` epochs, from pre-trained weights or (``control``) random ones."""
    return f"{RANDOM}-epoch-{k}" if control else f"epoch-{k}"


def every(epochs: int) -> list[str]:
    """Every variant of a model whose fine-tuning kept ``epochs`` epochs, in study order."""
    return order([PRETRAINED, RANDOM] + [epoch(k, c) for c in (False, True) for k in range(1, epochs + 1)])


def is_control(variant: str) -> bool:
    """The random-weight encoder or one fine-tuned from it."""
    return variant == RANDOM or variant.startswith(f"{RANDOM}-")


def epochs_of(variant: str) -> int:
    """How many epochs ``variant`` was fine-tuned: 0 for ``pretrained`` and ``random``."""
    return 0 if variant in (PRETRAINED, RANDOM) else int(variant.rsplit("-", 1)[1])


def start_of(variant: str) -> str:
    """The variant a fine-tuned one started from (itself when not fine-tuned)."""
    return RANDOM if is_control(variant) else PRETRAINED


def order(names) -> list[str]:
    """Variants in study order: pretrained, epoch-1, epoch-2..., then the control: random, random-epoch-1..."""
    return sorted(names, key=lambda v: (is_control(v), epochs_of(v)))


def run_name(variant: str, seed: int | None) -> str:
    """A run in file names and metrics keys: ``epoch-2-s42``; runs not fine-tuned have no seed."""
    return variant if seed is None else f"{variant}-s{seed}"
