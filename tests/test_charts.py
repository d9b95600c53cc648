"""Chart builders on small fake tidy frames, the offline renderer, and the readers of tracked outputs."""
from __future__ import annotations

import base64
import json

import numpy as np
import pandas as pd
import pytest

from embstudy import paths
from embstudy.book import charts, data, fmt, prose, provenance, render

MODELS = ("camembert", "flaubert")
VARIANTS = ("epoch-2", "pretrained", "epoch-1")  # deliberately out of study order


def fake_layers(models=MODELS, layers=4) -> pd.DataFrame:
    rows = []
    for m in models:
        for k, v in enumerate(VARIANTS):
            for layer in range(layers + 1):
                q50 = 0.05 * layer + 0.1 * k
                rows.append(dict(model=m, variant=v, layer=layer, cos_count=100, cos_q25=q50 - 0.1,
                                 cos_q50=q50, cos_q75=q50 + 0.1, cos_whislo=q50 - 0.3, cos_whishi=q50 + 0.3,
                                 baseline=0.02 * layer,
                                 cov_median=40.0 - layer - k, erank=90.0 - layer - k))
    return pd.DataFrame(rows)


def fake_accuracy(models=MODELS, layers=4) -> pd.DataFrame:
    return pd.DataFrame([dict(model=m, variant=v, layer=layer, probe=p,
                              accuracy=0.5 + 0.05 * layer * (p != "majority"))
                         for m in models for v in VARIANTS for layer in range(layers + 1)
                         for p in ("linear", "logreg", "shuffled", "majority")])


def layer_specs(spec: dict) -> list[dict]:
    """Every unit spec (with a mark) inside a possibly faceted or layered spec."""
    found = []
    for key in ("spec", "layer", "hconcat", "vconcat"):
        part = spec.get(key)
        for sub in part if isinstance(part, list) else [part] if part else []:
            found += layer_specs(sub)
    return found + ([spec] if "mark" in spec else [])


def test_cosine_boxes_draw_quartiles_whiskers_median_and_baseline_in_minus_one_to_one():
    spec = charts.cosine_boxes(fake_layers(MODELS[:1])).to_dict()
    units = layer_specs(spec)
    fields = {(u["mark"]["type"], ch, enc.get("field")) for u in units for ch, enc in u["encoding"].items()
              if isinstance(enc, dict)}
    assert {("bar", "y", "cos_q25"), ("bar", "y2", "cos_q75"),
            ("rule", "y", "cos_whislo"), ("rule", "y2", "cos_whishi"),
            ("tick", "y", "cos_q50"), ("point", "y", "baseline")} <= fields
    rule = next(u for u in units if u["mark"]["type"] == "rule")
    assert rule["encoding"]["y"]["scale"]["domain"] == [-1, 1]
    baseline = next(u for u in units if u["encoding"]["y"].get("field") == "baseline")
    assert baseline["mark"]["shape"] == "diamond" and baseline["encoding"]["color"]["value"] == "black"
    bar = next(u for u in units if u["mark"]["type"] == "bar")
    assert bar["encoding"]["color"]["scale"]["domain"] == ["pretrained", "epoch-1", "epoch-2"]
    assert '"bind": "legend"' in json.dumps(spec)  # legend selection in HTML
    assert {"cos_q50", "baseline"} <= {t.get("field") for t in bar["encoding"]["tooltip"]}


def test_charts_of_several_models_are_faceted_by_model():
    spec = charts.cosine_boxes(fake_layers()).to_dict()
    assert spec["facet"]["row"]["field"] == "model"
    assert len(next(iter(spec["datasets"].values()))) == len(fake_layers())
    assert charts.erank_bars(fake_layers()).to_dict()["facet"]["row"]["field"] == "model"
    assert "facet" not in charts.erank_bars(fake_layers(MODELS[:1])).to_dict()


def test_trace_boxes_are_tukey_box_plots_of_the_sentences():
    sentences = pd.DataFrame(dict(model="camembert", variant="pretrained", layer=np.repeat(range(3), 10),
                                  cov_trace=np.r_[np.arange(29.0), np.nan]))
    spec = charts.trace_boxes(sentences).to_dict()
    assert spec["mark"]["type"] == "boxplot" and spec["mark"]["extent"] == 1.5
    assert spec["encoding"]["y"]["field"] == "cov_trace" and len(next(iter(spec["datasets"].values()))) == 29


def test_accuracy_grid_shows_percentages_rows_model_by_variant():
    frame = fake_accuracy().query("probe == 'linear'")
    spec = charts.accuracy_grid(frame).to_dict()
    units = {u["mark"]["type"]: u for u in layer_specs(spec)}
    assert units["rect"]["encoding"]["color"]["field"] == "accuracy"
    assert units["text"]["encoding"]["text"]["format"] == ".1%"
    assert units["rect"]["encoding"]["y"]["sort"][:3] == ["camembert · pretrained", "camembert · epoch-1",
                                                         "camembert · epoch-2"]


def test_accuracy_lines_separate_probes_and_draw_the_majority_control():
    spec = charts.accuracy_lines(fake_accuracy()).to_dict()
    units = {u["mark"]["type"]: u for u in layer_specs(spec)}
    assert units["line"]["encoding"]["strokeDash"]["field"] == "probe"
    assert units["rule"]["transform"][0]["filter"] == "(datum.probe === 'majority')"
    assert spec["facet"]["column"]["field"] == "model"


def test_cones_convergence_and_change_charts_encode_their_measures():
    cones = pd.DataFrame(dict(model="camembert", variant=["pretrained", "epoch-1"] * 5, idx=range(10),
                              **{"class": ["negative", "positive"] * 5}, domain="books",
                              cos_first=np.linspace(-1, 1, 10)))
    spec = charts.cones(cones).to_dict()
    encoding = spec["spec"]["encoding"]
    assert encoding["y"]["field"] == "cos_first" and encoding["color"]["field"] == "class"
    conv = pd.DataFrame(dict(model="m", variant="pretrained", layer=[0, 1, 0, 1],
                             measure=["a", "a", "b", "b"],
                             value=[0.1, 0.2, 0.6, 0.7]))
    spec = charts.convergence(conv).to_dict()
    assert spec["facet"]["row"]["field"] == "measure" and spec["resolve"]["scale"]["y"] == "independent"
    change = pd.DataFrame(dict(model="m", variant="epoch-1", layer=[0, 1], measure="erank",
                               change=[1.0, -1.0]))
    assert layer_specs(charts.layer_change(change).to_dict())[0]["encoding"]["y"]["field"] == "change"


def test_pipeline_chart_reads_the_real_dvc_yaml():
    frame = data.pipeline()
    level = frame.drop_duplicates("stage").set_index("stage")["level"]
    assert level["synth"] == 0 and level["prepare"] == 1
    for m in data.models():  # params.yaml's, as DVC expands foreach (the book need not run)
        chain = [level[s] for s in (f"pretrain@{m}", f"control@{m}", f"finetune@{m}", f"extract@{m}", f"probe@{m}")]
        assert chain == sorted(set(chain)), chain
        parents = set(frame.loc[frame["stage"] == f"extract@{m}", "parent"])
        assert parents == {f"pretrain@{m}", f"tokenize@{m}", f"control@{m}", f"finetune@{m}"}
    assert set(frame.loc[frame["stage"] == "summary", "parent"]) == {
        f"{s}@{m}" for s in ("extract", "probe", "control", "finetune") for m in data.models()}
    assert "data.dvc" not in set(frame["stage"])  # the demo reads artifacts/synth, not the import
    spec = charts.pipeline(frame).to_dict()
    assert {u["mark"]["type"] for u in layer_specs(spec)} == {"rule", "point", "text"}


def test_html_renderer_embeds_the_local_bundle_and_no_cdn(tmp_path, monkeypatch):
    monkeypatch.setattr(render, "BUNDLE", tmp_path / "report" / "assets" / "vega.js")
    monkeypatch.delenv("QUARTO_EXECUTE_INFO", raising=False)
    monkeypatch.setenv("QUARTO_DOCUMENT_PATH", str(tmp_path / "report"))
    spec = charts.erank_bars(fake_layers(MODELS[:1])).to_dict()
    page = render.render(spec)["text/html"]
    assert 's.src = "assets/vega.js"' in page and "vegaEmbed(" in page
    assert "http" not in page.replace(spec["$schema"], "")  # nothing fetched: the $schema URL is only a name
    bundle = render.BUNDLE.read_text()
    assert bundle.startswith("// vega ") and "window.vegaEmbed" in bundle


def test_static_formats_get_a_png(tmp_path, monkeypatch):
    info = tmp_path / "info.json"
    info.write_text(json.dumps({"format": {"identifier": {"base-format": "typst"}}}))
    monkeypatch.setenv("QUARTO_EXECUTE_INFO", str(info))
    out = render.render(charts.erank_bars(fake_layers(MODELS[:1])).to_dict())
    assert set(out) == {"image/png"} and base64.b64decode(out["image/png"])[:4] == b"\x89PNG"
    info.write_text(json.dumps({"format": {"identifier": {"base-format": "html"}}}))
    assert not render.static_output()


# --- data and provenance: the readers ------------------------------------------------------------

def test_provenance_names_the_dvc_lock_hash_of_the_output_holding_a_file(tmp_path, monkeypatch):
    monkeypatch.setattr(paths, "ROOT", tmp_path)
    line = provenance.of(tmp_path / "artifacts/extract/m/layers.csv")
    assert "artifacts/extract/m/layers.csv (not yet in dvc.lock)" in line and line.startswith("[Source:")
    (tmp_path / "dvc.lock").write_text(
        "schema: '2.0'\nstages:\n  extract@m:\n    outs:\n    - path: artifacts/extract/m\n"
        "      md5: 0123456789abcdef.dir\n"
        "  prepare:\n    outs:\n    - path: metrics/prepare.json\n      md5: fedcba9876543210\n")
    line = provenance.of(tmp_path / "artifacts/extract/m/layers.csv", "metrics/prepare.json")
    assert "artifacts/extract/m/layers.csv (md5 0123456789 of its folder)" in line
    assert "metrics/prepare.json (md5 fedcba9876)" in line and line.rstrip().endswith("{.provenance}")
    (tmp_path / "dvc.yaml").write_text("stages: {}\n")  # in git, not a DVC output: its own hash
    assert "dvc.yaml (md5 9fe2e7804e, in git)" in provenance.of("dvc.yaml")


def test_layer_change_subtracts_the_pretrained_value(monkeypatch):
    monkeypatch.setattr(data, "layers", lambda *v: fake_layers(MODELS[:1]))
    change = data.layer_change()
    assert set(change["variant"]) == {"epoch-1", "epoch-2"}
    row = change.query("variant == 'epoch-2' and layer == 3 and measure == 'effective rank'")
    assert row["change"].item() == pytest.approx(-(VARIANTS.index("epoch-2") - VARIANTS.index("pretrained")))


def test_variant_order_and_small_formatters():
    assert data.variant_order(VARIANTS + ("epoch-10",)) == ["pretrained", "epoch-1", "epoch-2", "epoch-10"]
    assert fmt.pct(0.6254) == "62.5 %"
    table = fmt.table(pd.DataFrame({"a": ["x|y"], "b": [0.12345]}))
    assert table == "| a | b |\n|---|---|\n| x\\|y | 0.123 |\n"


def test_params_table_lists_every_leaf_with_its_reason():
    table = provenance.params_table().set_index("parameter")
    assert table.loc["finetune.epochs", "value"] == str(data.config().finetune.epochs)
    assert table.loc["finetune.epochs", "why"]
    assert "models.camembert.encoder.hidden" in table.index


def test_callout_names_the_profile():
    text = data.callout()
    assert text.startswith(":::") and text.rstrip().endswith(":::")
    assert data.PROFILES[data.config().profile][1] in text


def fake_intervals(variants=("pretrained", "epoch-1", "random", "random-epoch-1"), **extra) -> pd.DataFrame:
    return pd.DataFrame([dict(model=m, variant=v, layer=layer, mean=0.6, lo=0.55, hi=0.65, seeds=3, **extra)
                         for m in MODELS for v in variants for layer in range(3)])


def test_interval_charts_draw_a_band_from_lo_to_hi_under_the_mean_line():
    built = [charts.probe_intervals(fake_intervals(probe="linear")),
             charts.geometry_intervals(fake_intervals(measure="adjusted")),
             charts.cka_lines(fake_intervals(variants=("epoch-1", "random-epoch-1")))]
    for chart in built:
        units = layer_specs(chart.to_dict())
        band = next(u for u in units if u["mark"]["type"] == "area")
        line = next(u for u in units if u["mark"]["type"] == "line")
        assert (band["encoding"]["y"]["field"], band["encoding"]["y2"]["field"]) == ("lo", "hi")
        assert line["encoding"]["y"]["field"] == "mean"


def test_control_variants_are_gray_and_the_others_keep_their_colours():
    scale = charts.variant_color(fake_intervals()).to_dict()["scale"]
    colours = dict(zip(scale["domain"], scale["range"]))
    assert scale["domain"] == ["pretrained", "epoch-1", "random", "random-epoch-1"]
    assert colours["pretrained"] == charts.PALETTE[0] and colours["epoch-1"] == charts.PALETTE[1]
    assert colours["random"] in charts.GRAYS and colours["random-epoch-1"] in charts.GRAYS
    assert colours["random"] != colours["random-epoch-1"]


def test_correlation_cka_map_and_domain_charts_encode_their_measures():
    corr = pd.DataFrame(dict(measure=["cosine", "adjusted"], cells=[30, 30], rho=[0.4, -0.1], lo=[0.1, -0.4],
                             hi=[0.6, 0.2]))
    units = layer_specs(charts.correlation(corr).to_dict())
    rule = next(u for u in units if u["mark"]["type"] == "rule" and "x2" in u["encoding"])
    assert (rule["encoding"]["x"]["field"], rule["encoding"]["x2"]["field"]) == ("lo", "hi")
    assert rule["encoding"]["x"]["scale"]["domain"] == [-1, 1]
    cells = pd.DataFrame([dict(model=m, variant="epoch-1", layer_from=i, layer_to=j, cka=1.0 - 0.1 * abs(i - j))
                          for m in MODELS for i in range(3) for j in range(3)])
    (heat,) = layer_specs(charts.cka_map(cells).to_dict())
    assert heat["mark"]["type"] == "rect" and heat["encoding"]["color"]["scale"]["domain"] == [0, 1]
    domains = fake_intervals(domain="books")
    units = layer_specs(charts.domain_bars(domains).to_dict())
    assert {u["mark"]["type"] for u in units} == {"bar", "rule"}


def test_compare_reads_intervals_and_the_verdicts_follow():
    hi, lo = dict(mean=0.8, lo=0.75, hi=0.85), dict(mean=0.6, lo=0.55, hi=0.65)
    assert prose._compare(hi, lo) == "above" and prose._compare(lo, hi) == "below"
    assert prose._compare(hi, dict(mean=0.78, lo=0.7, hi=0.8)) == "indistinguishable from"
    assert fmt.ci(hi) == "80.0 % [75.0 %, 85.0 %]"


def test_a_readers_frame_names_the_files_it_was_read_from(tmp_path):
    """Provenance comes from the readers: a frame made by a @sourced reader (nested ones included) remembers
    every file read, keeps it through filtering, and a frame no reader made is refused."""
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    a.write_text("x,y\n1,2\n3,4\n")
    b.write_text("x,z\n1,5\n")

    @provenance.sourced
    def inner():
        return data._read(b, "b")

    @provenance.sourced
    def outer():
        return data._read(a, "a").merge(inner(), on="x", how="left")

    frame = outer()
    assert frame.attrs["source"] == [a.as_posix(), b.as_posix()] and inner().attrs["source"] == [b.as_posix()]
    line = provenance.of(frame[frame["x"] > 1])
    assert "a.csv" in line and "b.csv" in line
    with pytest.raises(ValueError, match="no reader of embstudy.book.data"):
        provenance.of(pd.DataFrame({"x": [1]}))


def test_histogram_separation_and_probe_curve_charts_encode_their_measures():
    """The outputs extract and probe write beside the others (hist.csv, separation.csv, curves.csv) are charted."""
    hist = pd.DataFrame(dict(model="m", variant=["pretrained"] * 2, layer=[1, 1], lo=[-1.0, 0.0], hi=[0.0, 1.0],
                             share=[0.25, 0.75]))
    spec = charts.cosine_hist(hist).to_dict()
    assert layer_specs(spec)[0]["encoding"]["y"]["field"] == "share" and spec["facet"]["column"]["field"] == "layer"
    sep = pd.DataFrame(dict(model="m", variant="epoch-1", layer=[0, 1], within=[0.5, 0.9], between=[0.5, 0.2],
                            separation=[0.0, 0.7]))
    assert layer_specs(charts.separation(sep).to_dict())[0]["encoding"]["y"]["field"] == "separation"
    curves = pd.DataFrame(dict(model="m", variant="epoch-1", layer=4, probe=["linear", "shuffled"], epoch=[1, 1],
                               accuracy=[0.7, 0.5]))
    enc = layer_specs(charts.probe_curves(curves).to_dict())[0]["encoding"]
    assert enc["x"]["field"] == "epoch" and enc["strokeDash"]["field"] == "probe"
