"""Build the book: ``quarto render`` where Quarto is installed, else a labelled offline PREVIEW.

Reads ``_quarto.yml`` (chapters, appendices, execute options, kernel, bibliography, resources) and the
``.qmd`` files it lists. With Quarto on PATH it runs ``quarto render --profile <params.yaml profile>``
(HTML and PDF into ``_book/``). Without it, the preview executes each chapter's ```` ```{python} ````
cells in a fresh Jupyter kernel (nbclient) whose working directory is the chapter's folder (Quarto's
default ``execute-dir``), evaluates inline ```{python} expr``` in document order, and converts the
markdown with mistune: ``#|`` options (label, fig-cap, echo, output incl. ``asis``, include, eval),
``:::`` divs (callouts, ``content-visible``/``content-hidden`` by profile, ``#refs``), ``@fig-``/``@sec-``
cross-references, ``[@key]`` citations from the ``.bib``, ``[text]{.class}`` spans. It writes
``_book/preview/`` with Quarto's page layout (``index.html``, ``report/*.html``) plus the resources.

Run: ``python -m embstudy.book`` (``--preview`` builds the preview even where Quarto exists), whose
``__main__`` calls :func:`main` here.
"""
from __future__ import annotations

import argparse
import html
import json
import logging
import os
import re
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import mistune
import nbformat
import yaml
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from embstudy import files, params, paths

log = logging.getLogger("embstudy.book")
MD = mistune.create_markdown(escape=False, plugins=["table", "strikethrough"])
CELL = re.compile(r"^```\{python\}[^\n]*\n(.*?)^```[ \t]*$\n?", re.M | re.S)
INLINE = re.compile(r"(?<!`)`\{python\}[ \t]([^`]+)`")  # Quarto's inline expression syntax
CODE = re.compile(r"(^```.*?^```[ \t]*$|`[^`\n]+`)", re.M | re.S)  # verbatim: no substitutions inside
HEADING = re.compile(r"^(#{1,4})[ \t]+(.+?)(?:[ \t]+\{([^}]*)\})?[ \t]*$", re.M)
DIV = re.compile(r"^:{3,}[ \t]*(?:\{([^}]*)\})?[ \t]*$", re.M)
CITE = re.compile(r"\[(-?@[\w:.-]+(?:[ \t]*;[ \t]*-?@[\w:.-]+)*)\]|(?<![\w@\\])@([\w][\w:.-]*\w)")
SPAN = re.compile(r"\[([^\]]+)\]\{\.([\w-]+)\}")
TAG = "@@embstudy-inline@@"
HELPER = f"""def _embstudy_inline(values):
    import json
    print({TAG!r} + json.dumps([["md", v._repr_markdown_()] if hasattr(v, "_repr_markdown_")
                               else ["plain", repr(v)] for v in values]))
"""
STYLE = """body{font:16px/1.55 system-ui,sans-serif;margin:0;display:flex;color:#222}
nav{flex:0 0 14rem;padding:1rem;background:#f4f4f6;min-height:100vh;font-size:14px}
nav a{display:block;margin:.3rem 0}main{max-width:58rem;padding:1rem 2rem}
.banner{background:#fff3cd;border:1px solid #e0c060;padding:.4rem .8rem;font-size:13px}
.callout{border-left:5px solid #0d6efd;background:#f3f7ff;padding:.1rem 1rem;margin:1rem 0}
.callout-warning{border-color:#e0a000;background:#fff8e6}.callout-title{font-weight:600;margin:.5rem 0 0}
figure{margin:1.5rem 0}figcaption{font-size:14px;color:#444}.provenance{font-size:12px;color:#777}
pre{background:#f6f6f6;padding:.5rem;overflow-x:auto}table{border-collapse:collapse;font-size:14px}
td,th{border-bottom:1px solid #ddd;padding:.2rem .6rem;text-align:left}"""


def parse(text: str) -> tuple[dict, list[tuple]]:
    """YAML front matter and blocks: ``("md", text)`` or ``("code", source, options)``."""
    meta = {}
    if match := re.match(r"---\n(.*?)\n---[ \t]*\n", text, re.S):
        meta, text = yaml.safe_load(match.group(1)) or {}, text[match.end():]
    blocks, pos = [], 0
    for m in CELL.finditer(text):
        opts = "\n".join(ln[3:] for ln in m.group(1).splitlines() if ln.startswith("#| "))
        blocks += [("md", text[pos:m.start()]), ("code", m.group(1), yaml.safe_load(opts) or {})]
        pos = m.end()
    return meta, blocks + [("md", text[pos:])]


def outside_code(text: str, fn) -> str:
    """Apply ``fn`` to the parts of markdown ``text`` that are not code spans or fenced code."""
    return "".join(p if i % 2 else fn(p) for i, p in enumerate(CODE.split(text)))


def read_bib(path: Path) -> dict[str, dict]:
    """BibTeX entries as ``{key: {field: value}}``, braces dropped (values in braces, quotes or bare)."""
    text, entries = path.read_text(encoding="utf-8"), {}
    for m in re.finditer(r"^@(\w+)\s*\{\s*([^,\s]+)\s*,", text, re.M):
        fields, pos = {"type": m.group(1).lower()}, m.end()
        while f := re.match(r"\s*(\w+)\s*=\s*", text[pos:]):
            pos, depth, start = pos + f.end(), 0, pos + f.end()
            while depth or text[pos] not in ",}":  # a value ends at a top-level , or }
                depth += {"{": 1, "}": -1}.get(text[pos], 0)
                pos += 1
            value = text[start:pos].strip().strip('"')
            if f.group(1).lower() == "author" and value.startswith("{{"):  # a corporate author: one name
                fields["corporate"] = True
            value = re.sub(r"[{}]", "", value).replace("\\_", "_")
            fields[f.group(1).lower()], pos = re.sub(r"\s+", " ", value), pos + (text[pos] == ",")
        entries[m.group(2)] = fields
    return entries


def surnames(entry: dict) -> str:
    if entry.get("corporate"):
        return entry["author"]
    authors = entry.get("author", "Anon.").split(" and ")
    names = [a.split(",")[0] if "," in a else a.split()[-1] for a in authors]
    return names[0] if len(names) == 1 else " and ".join(names) if len(names) == 2 else f"{names[0]} et al."


def reference(key: str, e: dict) -> str:
    venue = e.get("booktitle") or e.get("journal") or e.get("howpublished") or e.get("publisher", "")
    pages = f", pp. {e['pages'].replace('--', '–')}" if "pages" in e else ""
    authors = e.get("author", "").replace(" and ", "; ")
    year, title = e.get("year", "n.d."), e.get("title", "")
    return f'<p id="ref-{key}">{authors} ({year}). {title}. <em>{venue}</em>{pages}.</p>'


def relative(target: str, here: str) -> str:
    """URL of ``target`` (a project-relative page, maybe with #anchor) from page ``here``."""
    page, _, anchor = target.partition("#")
    return os.path.relpath(page or here, os.path.dirname(here) or ".") + (f"#{anchor}" if anchor else "")


def shown(classes: list[str], attrs: str, profiles: set[str]) -> bool | None:
    """Visibility of a ``content-visible``/``content-hidden`` div for these profiles (the preview is HTML)."""
    if not {"content-visible", "content-hidden"} & set(classes):
        return None
    facts = {"profile": profiles, "format": {"html"}}
    ok = all((value in facts[kind]) == (word == "when")
             for word, kind, value in re.findall(r'(when|unless)-(profile|format)="([^"]*)"', attrs))
    return ok == ("content-visible" in classes)


class Book:
    """The chapters of ``_quarto.yml``, their headings and figures numbered, ready to execute and write."""

    def __init__(self, root: Path, profiles: set[str]):
        self.root, self.profiles = root, profiles
        self.cfg = yaml.safe_load((root / "_quarto.yml").read_text(encoding="utf-8"))
        self.bib = read_bib(root / self.cfg["bibliography"]) if "bibliography" in self.cfg else {}
        self.labels, self.chapters, count = {}, [], {False: 0, True: 0}
        book = self.cfg["book"]
        files = [(f, False) for f in book["chapters"]] + [(f, True) for f in book.get("appendices", [])]
        for rel, appendix in files:
            meta, blocks = parse((root / rel).read_text(encoding="utf-8"))
            first = HEADING.search(blocks[0][1])
            numbered = not (first and "unnumbered" in (first.group(3) or ""))
            count[appendix] += numbered
            num = (chr(64 + count[True]) if appendix else str(count[False])) if numbered else ""
            self.chapters.append(self._number(Path(rel), num, meta, blocks))
        refs = (c["href"] for c in self.chapters for b in c["blocks"] if "{#refs}" in b[1])
        self.refs_page = next(refs, "")  # the page holding the bibliography

    def _number(self, rel: Path, num: str, meta: dict, blocks: list) -> dict:
        """Headings numbered (as HTML) in the md blocks; fig- and sec- labels recorded for cross-refs."""
        href, counts, titles, figs = rel.with_suffix(".html").as_posix(), [0] * 4, [], 0

        def heading(m):
            level, attrs, text = len(m.group(1)), m.group(3) or "", m.group(2)
            counts[level - 1:] = [counts[level - 1] + 1] + [0] * (4 - level)
            n = ".".join([num, *map(str, counts[1:level])]) if num and "unnumbered" not in attrs else ""
            ident = (re.search(r"#([\w-]+)", attrs) or [0, re.sub(r"\W+", "-", text.lower()).strip("-")])[1]
            titles.append(text)
            if ident.startswith("sec-"):
                kind = "Chapter " if level == 1 else "Section "
                self.labels[ident] = (kind + (n or text), f"{href}#{ident}")
            return f'<h{level} id="{ident}">{n} {html.escape(text)}</h{level}>'

        for i, block in enumerate(blocks):
            if block[0] == "md":
                blocks[i] = ("md", outside_code(block[1], lambda t: HEADING.sub(heading, t)))
            elif str(label := block[2].get("label", "")).startswith("fig-"):
                figs += 1
                self.labels[label] = (f"Figure {num + '.' if num else ''}{figs}", f"{href}#{label}")
        return {"src": rel, "href": href, "num": num, "blocks": blocks,
                "title": meta.get("title", titles[0] if titles else rel.stem)}

    def execute(self, chapter: dict, kernel: str) -> dict[int, list]:
        """Run a chapter in a fresh kernel in its folder; outputs per block index (code cell or inline)."""
        cells, where = [nbformat.v4.new_code_cell(HELPER)], []
        for i, block in enumerate(chapter["blocks"]):
            if block[0] == "code" and block[2].get("eval", True) is not False:
                cells.append(nbformat.v4.new_code_cell(block[1]))
            elif block[0] == "md" and (exprs := INLINE.findall(block[1])):
                cells.append(nbformat.v4.new_code_cell(f"_embstudy_inline([{', '.join(exprs)}])"))
            else:
                continue
            where.append(i)
        nb, folder = nbformat.v4.new_notebook(cells=cells), (self.root / chapter["src"]).parent
        try:
            where_to_run = {"metadata": {"path": str(folder)}}
            try:
                NotebookClient(nb, kernel_name=kernel, timeout=600, resources=where_to_run).execute()
            except RuntimeError as e:  # a kernel died while starting, once, beside a loaded test suite
                if "Kernel died before replying" not in str(e):
                    raise
                log.warning("book: %s: the kernel died while starting; starting another", chapter["src"])
                NotebookClient(nb, kernel_name=kernel, timeout=600, resources=where_to_run).execute()
        except CellExecutionError as e:
            log.error("%s", e)
            raise SystemExit(f"book: {chapter['src']}: a cell failed: {e.ename}: {e.evalue}") from None
        return {i: cell.outputs for i, cell in zip(where, nb.cells[1:], strict=True)}

    def render(self, chapter: dict, outputs: dict[int, list]) -> str:
        """The chapter's HTML body: executed outputs in place, prose converted."""
        raw, parts, defaults = [], [], self.cfg.get("execute", {})

        def keep(fragment: str) -> str:  # raw HTML bypasses the markdown conversion
            raw.append(fragment)
            return f"\n\n<!--raw{len(raw) - 1}-->\n\n"

        for i, block in enumerate(chapter["blocks"]):
            if block[0] == "md":
                values = iter(inline_values(outputs.get(i, [])))
                parts.append(INLINE.sub(lambda m, v=values: next(v), block[1]))
                continue
            opts = {**defaults, **block[2]}
            if opts.get("include", True) is False:
                continue
            code = "\n".join(ln for ln in block[1].splitlines() if not ln.startswith("#|"))
            body = keep(f"<pre><code>{html.escape(code)}</code></pre>") if opts.get("echo", True) else ""
            if opts.get("output", True) is not False:
                body += "".join(output(o, opts, keep) for o in outputs.get(i, []))
            if (label := str(opts.get("label", ""))).startswith("fig-"):
                cap = f"{self.labels[label][0]}: {opts.get('fig-cap', '')}"
                body = keep(f'<figure id="{label}">') + body + keep("<figcaption>") + cap
                body += keep("</figcaption></figure>")
            parts.append(body)
        stack: list[str] = []
        doc = MD(outside_code("".join(parts), lambda t: self.prose(t, chapter["href"], stack)))
        doc = re.sub(r"<!--hide-->.*?<!--/hide-->", "", doc, flags=re.S)
        return re.sub(r"<!--raw(\d+)-->", lambda m: raw[int(m.group(1))], doc)

    def prose(self, text: str, here: str, stack: list[str]) -> str:
        """Fenced divs to HTML, citations and cross-references to links, ``[text]{.class}`` to spans."""
        def div(m):
            if m.group(1) is None:
                return stack.pop() if stack else m.group(0)
            classes, ident = re.findall(r"\.([\w-]+)", m.group(1)), re.search(r"#([\w-]+)", m.group(1))
            if (visible := shown(classes, m.group(1), self.profiles)) is not None:
                stack.append("\n\n" if visible else "\n\n<!--/hide-->\n\n")
                return "\n\n" if visible else "\n\n<!--hide-->\n\n"
            stack.append("\n\n</div>\n\n")
            if ident and ident[1] == "refs":
                entries = "".join(reference(k, self.bib[k]) for k in sorted(self.cited()))
                return f'\n\n<div id="refs">{entries}'
            kind = next((c[8:] for c in classes if c.startswith("callout-")), None)
            title = re.search(r'title="([^"]*)"', m.group(1))
            head = html.escape(title[1] if title else kind.title()) if kind else ""
            head = f'<p class="callout-title">{head}</p>' if kind else ""
            classes += ["callout"] * bool(kind)
            attrs = (f' id="{ident[1]}"' if ident else "") + f' class="{" ".join(classes)}"'
            return f"\n\n<div{attrs}>{head}\n\n"

        def cite(m):
            keys = re.findall(r"@([\w:.-]+)", m.group(1)) if m.group(1) else [m.group(2)]
            if len(keys) == 1 and keys[0] in self.labels:
                return f'<a href="{relative(self.labels[keys[0]][1], here)}">{self.labels[keys[0]][0]}</a>'
            if any(k not in self.bib for k in keys):
                return f"<strong>?{m.group(0)}</strong>"  # as Quarto marks an unresolved reference
            link = {k: relative(f"{self.refs_page}#ref-{k}", here) for k in keys}
            year = {k: f'<a href="{link[k]}">{self.bib[k].get("year", "n.d.")}</a>' for k in keys}
            if m.group(2):
                return f"{surnames(self.bib[keys[0]])} ({year[keys[0]]})"
            return "(" + "; ".join(f"{surnames(self.bib[k])} {year[k]}" for k in keys) + ")"

        return SPAN.sub(r'<span class="\2">\1</span>', CITE.sub(cite, DIV.sub(div, text)))

    def cited(self) -> set[str]:
        """Bibliography keys cited anywhere in the chapters' prose."""
        return {k for c in self.chapters for b in c["blocks"] if b[0] == "md"
                for m in CITE.finditer(b[1]) for k in re.findall(r"@([\w:.-]+)", m.group(0))} & set(self.bib)

    def page(self, chapter: dict, body: str) -> str:
        nav = "".join(f'<a href="{relative(c["href"], chapter["href"])}">{c["num"]} '
                      f"{html.escape(c['title'])}</a>" for c in self.chapters)
        title = html.escape(self.cfg["book"].get("title", "Book"))
        author = html.escape(str(self.cfg["book"].get("author", "")))
        return (f'<!doctype html><html><head><meta charset="utf-8"><title>{title}</title>'
                f"<style>{STYLE}</style>"
                f'</head><body><nav><p><b>{title}</b><br>{author}</p>{nav}</nav><main><p class="banner">PREVIEW built by '
                "<code>embstudy.book</code> without Quarto: the content, numbers and figures are the book's; "
                f"layout and numbering only approximate Quarto's.</p>{body}</main></body></html>")


def inline_values(outputs: list) -> list[str]:
    """Markdown per inline expression, as Quarto: markdown reprs as is, str reprs unquoted and escaped."""
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    if TAG not in text:
        return []
    values = json.loads(text.split(TAG, 1)[1].splitlines()[0])
    return [v if kind == "md" or v[:1] not in "'\"" else re.sub(r"([\\`*_{}\[\]()>#+\-.!])", r"\\\1", v[1:-1])
            for kind, v in values]


def output(o, opts: dict, keep) -> str:
    """One Jupyter output as markdown (``output: asis`` text, text/markdown) or a kept raw HTML fragment."""
    if o.output_type == "stream":
        if o.name == "stderr" and opts.get("warning", True) is False:
            return ""
        return o.text if opts.get("output") == "asis" else keep(f"<pre>{html.escape(o.text)}</pre>")
    data = o.get("data", {})
    if "text/markdown" in data:
        return f"\n\n{data['text/markdown']}\n\n"
    png = '<img src="data:image/png;base64,{}">'
    for mime, wrap in (("text/html", "{}"), ("image/svg+xml", "{}"), ("image/png", png)):
        if mime in data:
            return keep(wrap.format(data[mime]))
    return keep(f"<pre>{html.escape(data.get('text/plain', ''))}</pre>")


def ensure_kernel(name: str) -> None:
    """Install kernelspec ``name`` for this interpreter (absolute path, in sys.prefix) if it is missing."""
    from ipykernel.kernelspec import install
    from jupyter_client.kernelspec import KernelSpecManager

    if name not in KernelSpecManager().find_kernel_specs():
        install(kernel_name=name, display_name=f"{name} ({sys.prefix})", prefix=sys.prefix)


def build_preview(root: Path, out: Path, profiles: set[str], jobs: int = 2) -> Path:
    """Execute every chapter (``jobs`` kernels at a time) and write the pages and resources to ``out``."""
    book = Book(root, profiles)
    kernel = book.cfg.get("jupyter", "python3")
    ensure_kernel(kernel)
    with ThreadPoolExecutor(jobs) as pool:
        outputs = list(pool.map(lambda c: book.execute(c, kernel), book.chapters))
    with files.atomic_dir(out) as tmp:
        for chapter, outs in zip(book.chapters, outputs, strict=True):
            (tmp / chapter["href"]).parent.mkdir(parents=True, exist_ok=True)
            page = book.page(chapter, book.render(chapter, outs))
            (tmp / chapter["href"]).write_text(page, encoding="utf-8")
        resources = book.cfg.get("project", {}).get("resources", [])
        for src in (s for pattern in resources for s in root.glob(pattern)):
            (tmp / src.relative_to(root)).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, tmp / src.relative_to(root))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m embstudy.book", description=__doc__.splitlines()[0])
    ap.add_argument("--preview", action="store_true", help="build the preview even where Quarto exists")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s book: %(message)s", datefmt="%H:%M:%S")
    profile = params.load().profile
    if shutil.which("quarto") and not args.preview:
        from embstudy.book import render  # the vega bundle must exist before Quarto collects the resources

        render.ensure_bundle()
        ensure_kernel(yaml.safe_load((paths.ROOT / "_quarto.yml").read_text())["jupyter"])
        env = {**os.environ, "QUARTO_PYTHON": sys.executable}
        done = subprocess.run(["quarto", "render", "--profile", profile], cwd=paths.ROOT, env=env)
        if done.returncode:
            raise SystemExit(f"book: quarto render failed (exit {done.returncode}); its messages are above")
        log.info("book written to %s", paths.ROOT / "_book")
        return
    out = build_preview(paths.ROOT, paths.ROOT / "_book" / "preview", {profile})
    log.info("Quarto not found: PREVIEW written to %s", out / "index.html")


if __name__ == "__main__":
    main()
