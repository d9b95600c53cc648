"""How the book writes numbers and tables: percentages, decimals, intervals and markdown pipe tables.

Pure formatting, reading nothing: each function turns values into a string that both Quarto and the preview
render (inline ``{python}`` expressions, ``output: asis`` cells and :mod:`embstudy.book.prose`).
"""
from __future__ import annotations

import pandas as pd


def pct(x: float, digits: int = 1) -> str:
    """A share as a percentage string for the prose, e.g. ``'62.5 %'``."""
    return f"{100 * float(x):.{digits}f} %"


def num(x: float, digits: int = 2) -> str:
    return f"{float(x):,.{digits}f}"


def ci(row, fmt=pct) -> str:
    """``mean [lo, hi]`` of a summary row, for the prose."""
    return f"{fmt(row['mean'])} [{fmt(row['lo'])}, {fmt(row['hi'])}]"


def table(frame: pd.DataFrame, digits: int = 3) -> str:
    """A pipe table for ``output: asis`` cells (renders in HTML and PDF alike)."""
    def cell(v):
        return f"{v:.{digits}f}" if isinstance(v, float) else str(v).replace("|", "\\|")
    head = "| " + " | ".join(map(str, frame.columns)) + " |\n|" + "---|" * len(frame.columns) + "\n"
    rows = frame.itertuples(index=False)
    return head + "".join("| " + " | ".join(cell(v) for v in row) + " |\n" for row in rows)
