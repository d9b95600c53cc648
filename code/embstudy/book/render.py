"""The renderer that shows the book's Altair charts offline: interactive in HTML, static in PDF.

:func:`setup` registers and enables the ``embstudy`` Altair renderer (and lifts Altair's limit on rows
embedded in a spec); the chapters call it once, in their first cell. Importing this module changes no global
Altair state. For HTML the renderer emits a ``<div>`` and a vega-embed call that loads ONE local copy of vega,
vega-lite and vega-embed (``report/assets/vega.js``, written from ``vl_convert.javascript_bundle()`` on first
use; no CDN), so tooltips and legend selection work offline; when Quarto executes for a non-HTML format (the
base format in ``QUARTO_EXECUTE_INFO``, e.g. Typst for the PDF) it emits a PNG drawn by vl-convert instead.
"""
from __future__ import annotations

import base64
import hashlib
import json
import os
from pathlib import Path

import altair as alt
import vl_convert as vlc

from embstudy import files, paths

BUNDLE = paths.ROOT / "report" / "assets" / "vega.js"
HTML_FORMATS = {"html", "revealjs", "dashboard"}
VL_VERSION = ".".join(alt.SCHEMA_VERSION.lstrip("v").split(".")[:2])  # vl-convert wants "6.4"
EMBED = """<div id="{id}" class="embstudy-chart"></div>
<script>(function () {{
  var spec = {spec};
  function go() {{ vegaEmbed("#{id}", spec, {{actions: false}}).catch(console.error); }}
  if (window.vegaEmbed) {{ go(); return; }}
  var s = document.querySelector("script[data-embstudy-vega]");  // one bundle per page, loaded once
  if (!s) {{
    s = document.createElement("script"); s.src = "{src}"; s.dataset.embstudyVega = "1";
    document.head.appendChild(s);
  }}
  s.addEventListener("load", go);
}})();</script>"""


def ensure_bundle(target: Path | None = None) -> Path:
    """Write the vega + vega-lite + vega-embed bundle (about 0.9 MB) once per version of vl-convert."""
    target = target or BUNDLE
    stamp = (f"// vega {vlc.get_vega_version()}, vega-lite {alt.SCHEMA_VERSION}, "
             f"vega-embed {vlc.get_vega_embed_version()}\n")
    if not target.exists() or not target.read_text(encoding="utf-8").startswith(stamp):
        files.atomic_write(target, (stamp + vlc.javascript_bundle(vl_version=VL_VERSION)).encode())
        target.chmod(0o644)  # a web server must read it (the temp file was private)
    return target


def static_output() -> bool:
    """True when Quarto executes this kernel for a non-HTML format (PDF through Typst or LaTeX, docx)."""
    info = os.environ.get("QUARTO_EXECUTE_INFO")
    if not info or not Path(info).exists():
        return False
    fmt = json.loads(Path(info).read_text())["format"]["identifier"]
    return fmt.get("base-format", fmt.get("target-format", "html")) not in HTML_FORMATS


def render(spec: dict, **_) -> dict:
    """Altair renderer: vega-embed HTML with the local bundle, or a PNG for static formats."""
    if static_output():
        png = vlc.vegalite_to_png(spec, scale=2, vl_version=VL_VERSION)
        return {"image/png": base64.b64encode(png).decode()}
    text = json.dumps(spec, sort_keys=True)
    here = os.environ.get("QUARTO_DOCUMENT_PATH") or os.getcwd()  # the page's folder, mirrored in the output
    chart_id = "vis-" + hashlib.sha1(text.encode()).hexdigest()[:10]
    return {"text/html": EMBED.format(id=chart_id, spec=text, src=os.path.relpath(ensure_bundle(), here))}


def setup() -> None:
    """Show Altair charts through :func:`render` from now on, with no limit on the rows a spec embeds (the
    chapters' first cell calls it; calling it again changes nothing)."""
    alt.renderers.register("embstudy", render)
    alt.renderers.enable("embstudy")
    alt.data_transformers.disable_max_rows()
