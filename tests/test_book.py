"""The book: the preview converter on a tiny fixture book, the real chapters' references, their execution."""
from __future__ import annotations

import html
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from embstudy import params, paths
from embstudy.book import preview

QUARTO = {
    "_quarto.yml": """
        project:
          type: book
        book:
          title: Tiny
          chapters: [index.qmd, report/a.qmd, report/references.qmd]
          appendices: [report/m.qmd]
        bibliography: report/refs.bib
        jupyter: python3
        execute: {echo: false, warning: false}
        """,
    "index.qmd": """
        # Overview {#sec-overview}

        ```{python}
        import os
        x = 21
        ```

        Twice x is `{python} x * 2`, a word `{python} "a*b"`, run in `{python} os.path.basename(os.getcwd())`.
        See @fig-one and @sec-details, as @knuth84 said [@knuth84; @lamport94]. Unknown: @fig-nowhere.

        ::: {.callout-note title="Profile"}
        Inside a **callout**.
        :::
        """,
    "report/a.qmd": """
        # Details {#sec-details}

        ## Part {#sec-part}

        ```{python}
        #| output: asis
        import os
        folder = os.path.basename(os.getcwd())
        print("::: {.callout-warning}\\nfrom **asis** in " + folder + ", @fig-one\\n:::")
        ```

        ```{python}
        #| label: fig-one
        #| fig-cap: "A figure [@knuth84]."
        from IPython.display import HTML
        HTML("<svg id='drawing'></svg>")
        ```

        [Source: a file]{.provenance}

        ::: {.content-visible when-profile="paper"}
        Paper-only text.
        :::

        ::: {.content-hidden when-profile="paper"}
        Demo-only text.
        :::
        """,
    "report/references.qmd": """
        # References {.unnumbered}

        ::: {#refs}
        :::
        """,
    "report/m.qmd": """
        # Methods {#sec-methods}

        ```{python}
        #| echo: true
        print(6 * 7)
        ```
        """,
    "report/refs.bib": """
        @book{knuth84,
          author = {Knuth, Donald E.},
          title = {The {TeX}book},
          publisher = {Addison-Wesley},
          year = 1984
        }
        @article{lamport94, author = {Lamport, Leslie and Other, Ann and Third, T.}, title = "A title",
          journal = {J}, year = {1994}, pages = {1--10}}
        """,
}


def write_book(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> dict[str, str]:
    root = write_book(tmp_path_factory.mktemp("tiny"), QUARTO)
    out = preview.build_preview(root, root / "_book" / "preview", {"demo"})
    return {p.relative_to(out).as_posix(): p.read_text(encoding="utf-8") for p in out.rglob("*.html")}


def test_preview_has_one_page_per_chapter_laid_out_as_quarto(tiny):
    assert set(tiny) == {"index.html", "report/a.html", "report/references.html", "report/m.html"}
    assert all("PREVIEW" in page for page in tiny.values())


def test_inline_expressions_run_in_the_chapter_folder_and_strings_are_literal(tiny):
    text = re.sub(r"<[^>]+>", "", tiny["index.html"])
    assert "Twice x is 42" in text and "a word a*b" in text
    assert re.search(r"run in tiny\d*\.", text)  # index.qmd runs in the project root
    assert "from <strong>asis</strong> in report" in tiny["report/a.html"]  # report/ chapters run in report/


def test_asis_output_and_callouts_become_markdown_divs(tiny):
    warning = '<div class="callout-warning callout"><p class="callout-title">Warning</p>'
    assert warning in tiny["report/a.html"]
    assert '<p class="callout-title">Profile</p>' in tiny["index.html"]
    assert "Inside a <strong>callout</strong>." in tiny["index.html"]


def test_cross_references_are_numbered_links(tiny):
    assert '<a href="report/a.html#fig-one">Figure 2.1</a>' in tiny["index.html"]
    assert '<a href="report/a.html#sec-details">Chapter 2</a>' in tiny["index.html"]
    assert '<a href="a.html#fig-one">Figure 2.1</a>' in tiny["report/a.html"]
    assert '<h2 id="sec-part">2.1 Part</h2>' in tiny["report/a.html"]
    assert '<h1 id="sec-methods">A Methods</h1>' in tiny["report/m.html"]
    assert "<strong>?@fig-nowhere</strong>" in tiny["index.html"]


def test_figures_wrap_the_output_with_a_numbered_caption(tiny):
    figure = re.search(r'<figure id="fig-one">(.*?)</figure>', tiny["report/a.html"], re.S).group(1)
    assert "<svg id='drawing'></svg>" in figure and "Figure 2.1: A figure (Knuth" in figure


def test_citations_and_bibliography(tiny):
    page = tiny["index.html"]
    assert 'Knuth (<a href="report/references.html#ref-knuth84">1984</a>) said' in page
    assert "(Knuth <a" in page and "; Lamport et al. <a" in page
    refs = tiny["report/references.html"]
    assert 'id="ref-knuth84"' in refs and 'id="ref-lamport94"' in refs and "pp. 1–10" in refs


def test_profile_conditional_content_spans_and_echo(tiny):
    page = tiny["report/a.html"]
    assert "Demo-only text." in page and "Paper-only text." not in page
    assert '<span class="provenance">Source: a file</span>' in page
    assert "print(6 * 7)" in tiny["report/m.html"] and "<pre>42\n</pre>" in tiny["report/m.html"]


def test_a_failing_cell_stops_the_build_naming_the_chapter(tmp_path):
    files = dict(QUARTO, **{"report/m.qmd": "# Methods\n\n```{python}\n1 / 0\n```\n"})
    root = write_book(tmp_path, files)
    with pytest.raises(SystemExit, match=r"report/m.qmd: a cell failed: ZeroDivisionError"):
        preview.build_preview(root, root / "_book" / "preview", {"demo"})
    assert not (root / "_book" / "preview").exists()  # nothing half-written


def test_a_kernel_that_dies_while_starting_is_started_again_once(tmp_path, monkeypatch):
    root = write_book(tmp_path, QUARTO)
    started, real = [], preview.NotebookClient

    def execute(nb, **kw):  # the first kernel of each chapter dies; a second death is not retried
        started.append(nb)
        if sum(n is nb for n in started) == 1 or "die twice" in nb.cells[-1].source:
            raise RuntimeError("Kernel died before replying to kernel_info")
        real(nb, **kw).execute()

    monkeypatch.setattr(preview, "NotebookClient", lambda nb, **kw: SimpleNamespace(execute=lambda: execute(nb, **kw)))
    out = preview.build_preview(root, root / "_book" / "preview", {"demo"})
    assert "<pre>42\n</pre>" in (out / "report" / "m.html").read_text()
    assert len(started) == 2 * len(preview.Book(root, {"demo"}).chapters)
    root = write_book(tmp_path / "again", dict(QUARTO, **{"report/m.qmd": "# M\n\n```{python}\n'die twice'\n```\n"}))
    with pytest.raises(RuntimeError, match="Kernel died"):
        preview.build_preview(root, root / "_book" / "preview", {"demo"})


# --- the real book -------------------------------------------------------------------------------

def real_book(profile: str) -> preview.Book:
    return preview.Book(paths.ROOT, {profile})


def prose(chapter: dict) -> str:
    """The chapter's own text: no code, no (numbered) headings, no software versions."""
    text = "".join(preview.CODE.sub("", b[1]) for b in chapter["blocks"] if b[0] == "md")
    return re.sub(r"<h\d.*?</h\d>|Python \d+\.\d+", "", text)


def test_book_layout_matches_quarto_rules():
    cfg = real_book("demo").cfg
    assert cfg["book"]["chapters"][0] == "index.qmd"  # a book's home page sits beside _quarto.yml
    assert "freeze" not in str(cfg.get("execute", {}))
    for rel in cfg["book"]["chapters"] + cfg["book"]["appendices"]:
        assert (paths.ROOT / rel).exists(), rel


def test_book_names_what_the_typst_book_template_needs():
    """Quarto 1.10's Typst book (orange-book) fails without ``book.author``, and with it `make report`:
    ``error: expected content, found array`` at ``#text(size: title-main-3, weight: "bold", author)``."""
    cfg = yaml.safe_load((paths.ROOT / "_quarto.yml").read_text())
    assert "typst" in cfg["format"] and cfg["project"]["type"] == "book"
    for key in ("title", "author"):
        value = cfg["book"].get(key)
        assert isinstance(value, str) and value.strip(), f"_quarto.yml: book.{key} must be a non-empty string"
    assert html.escape(cfg["book"]["author"]) in real_book("demo").page(real_book("demo").chapters[0], "")


def test_every_reference_points_to_a_label_and_every_citation_to_the_bib():
    b = real_book("paper")
    for chapter in b.chapters:
        for m in preview.CITE.finditer("".join(b_[1] for b_ in chapter["blocks"] if b_[0] == "md")):
            for key in re.findall(r"@([\w:.-]+)", m.group(0)):
                assert key in b.labels or key in b.bib, f"{chapter['src']}: @{key} resolves to nothing"


def test_every_figure_has_a_caption_is_cited_and_is_followed_by_its_provenance():
    b = real_book("paper")
    text = "".join(b_[1] for c in b.chapters for b_ in c["blocks"] if b_[0] == "md")
    for chapter in b.chapters:
        blocks = chapter["blocks"]
        for i, block in enumerate(blocks):
            if block[0] == "code" and str(block[2].get("label", "")).startswith("fig-"):
                label = block[2]["label"]
                assert block[2].get("fig-cap"), label
                assert f"@{label}" in text, f"{label} is never cited"
                after = next(x for x in blocks[i + 1:] if x[0] == "code")
                assert "provenance.of(" in after[1], f"{label}: no provenance line under it"


def test_every_chapter_opens_with_the_profile_callout_and_types_no_results():
    for chapter in real_book("demo").chapters:
        code = [b for b in chapter["blocks"] if b[0] == "code"]
        if chapter["num"]:
            assert "data.callout()" in code[0][1] and code[0][2].get("output") == "asis", chapter["src"]
        typed = re.findall(r"\d+\.\d+|\d+ ?%", prose(chapter))
        assert not typed, f"{chapter['src']}: numbers typed in the prose: {typed}"


ARTIFACTS = [folder(m) for m in params.load().models for folder in (paths.extracted, paths.probed)]


@pytest.mark.skipif(not all(a.exists() for a in ARTIFACTS),
                    reason="artifacts/extract and artifacts/probe are absent: run `dvc repro` first "
                           "(the lead's end-to-end test builds the book against the micro pipeline)")
def test_the_whole_book_executes_and_every_figure_is_drawn(tmp_path):
    profile = params.load().profile
    out = preview.build_preview(paths.ROOT, tmp_path / "preview", {profile})
    b = real_book(profile)
    pages = {c["href"]: (out / c["href"]).read_text(encoding="utf-8") for c in b.chapters}
    for chapter in b.chapters:
        page = pages[chapter["href"]]
        assert "?@" not in re.sub(r"<script.*?</script>", "", page, flags=re.S), chapter["src"]
        for label in re.findall(r"#\| label: (fig-[\w-]+)", (paths.ROOT / chapter["src"]).read_text()):
            if label == "fig-cls-original" and profile != "paper":
                continue
            figure = re.search(rf'<figure id="{label}">(.*?)</figure>', page, re.S)
            assert figure and "vegaEmbed" in figure.group(1), f"{label}: no chart"
    assert (out / "report" / "assets" / "vega.js").stat().st_size > 100_000


@pytest.mark.skipif(shutil.which("quarto") is None, reason="quarto is not installed here: the HTML + PDF "
                                                            "render is checked where Quarto exists")
def test_quarto_renders_html_and_pdf():
    done = subprocess.run([sys.executable, "-m", "embstudy.book"], cwd=paths.ROOT, capture_output=True,
                          text=True, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    assert (paths.ROOT / "_book" / "index.html").exists()
    assert (paths.ROOT / "_book" / "embstudy.pdf").exists()
