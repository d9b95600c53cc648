"""The book's charts: Altair specs, one function per figure of the chapters.

Each chart function takes one tidy frame from :mod:`embstudy.book.data` and returns an Altair chart;
a frame holding several models is faceted by model, each panel on the model's own layer axis (models of
different depths sit side by side). Colours are fixed per variant across charts (the random
control in grays); clicking a legend entry highlights it in HTML. How the charts are shown (interactive in
HTML, static in PDF, offline) is :mod:`embstudy.book.render`'s business; importing this module changes no
global Altair state.
"""
from __future__ import annotations

import altair as alt
import pandas as pd

from embstudy import variants
from embstudy.book import data

WIDTH = 560
VARIANT = "variant:N"
PALETTE = ["#4c78a8", "#f58518", "#e45756", "#72b7b2", "#54a24b", "#eeca3b", "#b279a2", "#ff9da6", "#9d755d"]
GRAYS = ["#bbbbbb", "#999999", "#777777", "#555555", "#333333"]
CLASSES = alt.Scale(domain=["negative", "positive"], range=["#d62728", "#1f77b4"])


def in_order(df: pd.DataFrame) -> list[str]:
    return data.variant_order(df["variant"])


def shade(variant: str) -> str:
    """pretrained: the palette's first colour, epoch-k its k-th; the random control in grays."""
    colours = GRAYS if variants.is_control(variant) else PALETTE
    return colours[variants.epochs_of(variant) % len(colours)]


def variant_color(df: pd.DataFrame) -> alt.Color:
    """The same colour for a variant in every chart."""
    order = in_order(df)
    return alt.Color(VARIANT, sort=order, scale=alt.Scale(domain=order, range=[shade(v) for v in order]),
                     title="variant")


def _pick(field: str = "variant"):
    """Click a legend entry to highlight it (HTML only)."""
    return alt.selection_point(fields=[field], bind="legend")


def _fade(pick, low: float = 0.15, high: float = 1.0):
    return alt.condition(pick, alt.value(high), alt.value(low))


def _layer_axes(df: pd.DataFrame) -> dict:
    """Layers on x, the variants of a layer side by side, coloured."""
    return {"x": alt.X("layer:O", title="layer (0 = embeddings)", axis=alt.Axis(labelAngle=0)),
            "xOffset": alt.XOffset(VARIANT, sort=in_order(df)), "color": variant_color(df)}


def _box_width(df: pd.DataFrame) -> float:
    return 0.8 * WIDTH / (df["layer"].nunique() * df["variant"].nunique())  # one box's share of the axis


def _by_model(chart, df: pd.DataFrame, **resolve):
    """One row per model when the frame holds several (data moved to the facet, as layered facets need), each
    with its own layer axis (models of different depths)."""
    if df["model"].nunique() == 1:
        return chart
    resolve = {"x": "independent"} | resolve
    return chart.facet(row=alt.Row("model:N", title=None), data=df).resolve_scale(**resolve)


def cosine_boxes(df: pd.DataFrame) -> alt.Chart:
    """Boxes from stored quantiles per (variant, layer), y fixed to [-1, 1]; black diamond: the baseline."""
    pick, axes, width = _pick(), _layer_axes(df), _box_width(df)
    base = (alt.Chart(df) if df["model"].nunique() == 1 else alt.Chart()).encode(
        x=axes["x"], xOffset=axes["xOffset"], opacity=_fade(pick))
    y = alt.Y("cos_whislo:Q", scale=alt.Scale(domain=[-1, 1]), title="cosine of token pairs in a sentence")
    stats = ("cos_whislo", "cos_q25", "cos_q50", "cos_q75", "cos_whishi", "baseline")
    tips = ["model:N", "variant:N", "layer:O", "cos_count:Q"]
    tips += [alt.Tooltip(f"{c}:Q", format=".3f") for c in stats]
    boxes = alt.layer(
        base.mark_rule(color="#444").encode(y=y, y2="cos_whishi:Q"),
        base.mark_bar(stroke="#444", strokeWidth=0.5, width=width).encode(
            y="cos_q25:Q", y2="cos_q75:Q", color=axes["color"], tooltip=tips).add_params(pick),
        base.mark_tick(thickness=2, size=width).encode(y="cos_q50:Q", color=alt.value("white")),
        base.mark_point(shape="diamond", filled=True, size=60).encode(
            y="baseline:Q", color=alt.value("black"), tooltip=tips),
    ).properties(width=WIDTH, height=220)
    return _by_model(boxes, df)


def trace_boxes(df: pd.DataFrame) -> alt.Chart:
    """Tukey box plots (1.5 IQR) of the per-sentence covariance trace per (variant, layer)."""
    chart = alt.Chart(df.dropna(subset=["cov_trace"])).mark_boxplot(extent=1.5, size=_box_width(df)).encode(
        y=alt.Y("cov_trace:Q", title="trace of the token covariance", scale=alt.Scale(zero=False)),
        **_layer_axes(df),
    ).properties(width=WIDTH, height=200)  # no legend selection: composite marks repeat its signal in facets
    return _by_model(chart, df, y="independent")


def erank_bars(df: pd.DataFrame) -> alt.Chart:
    """Effective rank per (variant, layer) as bars."""
    pick = _pick()
    chart = alt.Chart(df).mark_bar().encode(
        y=alt.Y("erank:Q", title="effective rank"), opacity=_fade(pick), **_layer_axes(df),
        tooltip=["model", "variant", "layer", alt.Tooltip("erank:Q", format=".1f")],
    ).add_params(pick).properties(width=WIDTH, height=180)
    return _by_model(chart, df)


def layer_change(df: pd.DataFrame) -> alt.Chart:
    """Fine-tuned minus pre-trained per layer: a panel per (measure, model), a line per epoch."""
    pick = _pick()
    line = alt.Chart().mark_line(point=True).encode(
        x=alt.X("layer:O", axis=alt.Axis(labelAngle=0)),
        y=alt.Y("change:Q", title="fine-tuned − pre-trained"),
        color=variant_color(df), opacity=_fade(pick),
        tooltip=["model:N", "variant:N", "layer:O", "measure:N", alt.Tooltip("change:Q", format=".3f")],
    ).add_params(pick)
    zero = alt.Chart().mark_rule(color="gray", strokeDash=[3, 3]).encode(y=alt.datum(0))
    return alt.layer(line, zero, data=df).properties(width=250, height=150).facet(
        row=alt.Row("measure:N", title=None), column=alt.Column("model:N", title=None),
    ).resolve_scale(x="independent", y="independent")


def _rows(df: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """Rows named "model · variant", and their order: by model, then pretrained, epoch-1..."""
    order = [f"{m} · {v}" for m in sorted(df["model"].unique()) for v in in_order(df)]
    return df.assign(row=df["model"] + " · " + df["variant"]), order


def accuracy_grid(df: pd.DataFrame) -> alt.Chart:
    """Heat map of test accuracy, rows model x variant, columns layers, each cell labelled in percent."""
    df, order = _rows(df)
    base = alt.Chart(df).encode(x=alt.X("layer:O", title="layer", axis=alt.Axis(labelAngle=0)),
                                y=alt.Y("row:N", sort=order, title=None))
    cells = base.mark_rect().encode(
        color=alt.Color("accuracy:Q", scale=alt.Scale(scheme="blues"), legend=alt.Legend(format=".0%")),
        tooltip=["model", "variant", "layer", *(alt.Tooltip(f"{c}:Q", format=".2%")
                                                 for c in ("accuracy", "lo", "hi") if c in df)])
    dark = alt.datum.accuracy > df["accuracy"].quantile(0.6)  # white text on the darker cells
    text = base.mark_text(fontSize=12).encode(
        text=alt.Text("accuracy:Q", format=".1%"),
        color=alt.condition(dark, alt.value("white"), alt.value("black")))
    return (cells + text).properties(width=WIDTH, height=28 * len(order))


def accuracy_lines(df: pd.DataFrame) -> alt.Chart:
    """Accuracy by layer per variant and probe (main, logreg, shuffled labels); gray rule: majority class."""
    pick = _pick()
    base = alt.Chart().encode(x=alt.X("layer:O", axis=alt.Axis(labelAngle=0)))
    lines = base.mark_line(point=True).encode(
        y=alt.Y("accuracy:Q", scale=alt.Scale(zero=False), axis=alt.Axis(format="%"), title="test accuracy"),
        color=variant_color(df), strokeDash=alt.StrokeDash("probe:N", title="probe"), opacity=_fade(pick),
        tooltip=["model:N", "variant:N", "layer:O", "probe:N", alt.Tooltip("accuracy:Q", format=".2%")],
    ).transform_filter(alt.datum.probe != "majority").add_params(pick)
    majority = base.mark_rule(color="gray", strokeDash=[2, 2]).encode(
        y="mean(accuracy):Q", tooltip=[alt.Tooltip("mean(accuracy):Q", format=".2%", title="majority class")],
    ).transform_filter(alt.datum.probe == "majority")
    return alt.layer(lines, majority, data=df).properties(width=300, height=230).facet(
        column=alt.Column("model:N", title=None)).resolve_scale(x="independent")


def cones(df: pd.DataFrame) -> alt.Chart:
    """Class cones: cosine of each test [CLS] with the first review's, by class; model x variant panels."""
    pick = _pick("class")
    return alt.Chart(df).mark_circle(size=12).encode(
        x=alt.X("idx:Q", title="test review"),
        y=alt.Y("cos_first:Q", title="cosine with review 0", scale=alt.Scale(domain=[-1, 1])),
        color=alt.Color("class:N", scale=CLASSES), opacity=_fade(pick, 0.05),
        tooltip=["model", "variant", "idx", "class", "domain", alt.Tooltip("cos_first:Q", format=".3f")],
    ).add_params(pick).properties(width=150, height=130).facet(
        row=alt.Row("model:N", title=None), column=alt.Column(VARIANT, sort=in_order(df), title=None))


def convergence(df: pd.DataFrame) -> alt.Chart:
    """Per model: the cosine median above the baseline and the probe accuracy by layer, a line per variant."""
    pick = _pick()
    return alt.Chart(df).mark_line(point=True).encode(
        x=alt.X("layer:O", axis=alt.Axis(labelAngle=0)),
        y=alt.Y("value:Q", scale=alt.Scale(zero=False), title=None),
        color=variant_color(df), opacity=_fade(pick),
        tooltip=["model", "variant", "layer", "measure", alt.Tooltip("value:Q", format=".3f")],
    ).add_params(pick).properties(width=260, height=150).facet(
        row=alt.Row("measure:N", title=None, sort=list(dict.fromkeys(df["measure"]))),  # in the frame's order
        column=alt.Column("model:N", title=None),
    ).resolve_scale(x="independent", y="independent")


def grid_comparison(df: pd.DataFrame) -> alt.Chart:
    """Original and reproduced accuracy grids side by side (shared colours), then their difference."""
    df, order = _rows(df.dropna(subset=["accuracy"]))  # a cell the reproduction lacks stays empty

    def heat(frame: pd.DataFrame, scale: alt.Scale, fmt: str):
        base = alt.Chart(frame).encode(x=alt.X("layer:O", axis=alt.Axis(labelAngle=0)),
                                       y=alt.Y("row:N", sort=order, title=None))
        text = base.mark_text(fontSize=10).encode(text=alt.Text("accuracy:Q", format=fmt))
        return (base.mark_rect().encode(color=alt.Color("accuracy:Q", scale=scale, title=None)) + text) \
            .properties(width=220, height=120)

    grids = heat(df[df["source"] != "difference"], alt.Scale(scheme="blues"), ".1%").facet(
        column=alt.Column("source:N", sort=["original", "reproduced"], title=None))
    diff = heat(df[df["source"] == "difference"], alt.Scale(scheme="redblue", domainMid=0), "+.1%")
    diff = diff.properties(title="reproduced − original")
    return alt.hconcat(grids, diff).resolve_scale(color="independent")


def finetune_history(df: pd.DataFrame) -> alt.Chart:
    """Fine-tuning: test accuracy after each epoch, a line per (start, seed), a panel per model."""
    starts = list(dict.fromkeys(df["start"]))
    return alt.Chart(df).mark_line(point=True).encode(
        x=alt.X("epoch:O", axis=alt.Axis(labelAngle=0)),
        y=alt.Y("eval_accuracy:Q", axis=alt.Axis(format="%"), scale=alt.Scale(zero=False),
                title="test accuracy"),
        color=alt.Color("start:N", sort=starts, scale=alt.Scale(domain=starts, range=[PALETTE[0], GRAYS[2]]),
                        title="from"),
        detail="seed:N", tooltip=["model", "start", "seed", "epoch", alt.Tooltip("eval_accuracy:Q", format=".2%"),
                                  alt.Tooltip("train_loss:Q", format=".3f")],
    ).properties(width=260, height=180).facet(column=alt.Column("model:N", title=None))


def pipeline(df: pd.DataFrame) -> alt.Chart:
    """The DVC stage graph: a box per stage, lines from the stages it depends on."""
    edges = alt.Chart(df.dropna(subset=["parent"])).mark_rule(color="#999").encode(
        x=alt.X("parent_level:Q", axis=None), x2="level:Q",
        y=alt.Y("parent_row:Q", axis=None, scale=alt.Scale(reverse=True)), y2="row:Q")
    nodes = alt.Chart(df.drop_duplicates("stage")).encode(x="level:Q", y="row:Q", tooltip=["stage"])
    boxes = nodes.mark_point(shape="square", size=1500, filled=True, color="#e8eef9", opacity=1)
    names = nodes.mark_text(fontSize=10, lineBreak="@").encode(text="stage")  # "extract@camembert": two lines
    tallest = df.drop_duplicates("stage").groupby("level").size().max()  # stages side by side in one level
    return (edges + boxes + names).properties(width=WIDTH, height=max(120, 42 * tallest)).configure_view(
        stroke=None)


def corpus_counts(df: pd.DataFrame) -> alt.Chart:
    """Reviews per domain and split, stacked by label."""
    labels = alt.Scale(domain=["neg", "pos", "unlabeled"], range=["#d62728", "#1f77b4", "#bbb"])
    return alt.Chart(df).mark_bar().encode(
        x=alt.X("domain:N", axis=alt.Axis(labelAngle=0), title=None), y="reviews:Q",
        color=alt.Color("label:N", scale=labels), tooltip=["split", "domain", "label", "reviews"],
    ).properties(width=150, height=160).facet(
        column=alt.Column("split:N", title=None, sort=["train", "test", "unlabeled"]))


def lengths(df: pd.DataFrame) -> alt.Chart:
    """Histogram of the labelled reviews' lengths (in ``df.unit``: words or characters), stacked by domain."""
    return alt.Chart(df).mark_bar().encode(
        x=alt.X("length_from:Q", bin="binned", title=f"{df['unit'].iloc[0]} per review"), x2="length_to:Q",
        y=alt.Y("sum(reviews):Q", title="reviews"), color="domain:N",
        tooltip=["split", "domain", "length_from", "length_to", "reviews"],
    ).properties(width=260, height=160).facet(column=alt.Column("split:N", title=None, sort="descending"))


def _band(df: pd.DataFrame, y: str, title: str, fmt: str, **encode) -> alt.LayerChart:
    """Mean by layer, a line per variant, and its interval as a band (lo, hi); click the legend to pick."""
    pick = _pick()
    base = alt.Chart().encode(x=alt.X("layer:O", axis=alt.Axis(labelAngle=0)), color=variant_color(df),
                              **encode)
    tips = ["model:N", "variant:N", "layer:O", alt.Tooltip("mean:Q", format=fmt, title=y),
            alt.Tooltip("lo:Q", format=fmt), alt.Tooltip("hi:Q", format=fmt), "seeds:Q"]
    band = base.mark_area().encode(y="lo:Q", y2="hi:Q", opacity=_fade(pick, 0.03, high=0.2))
    line = base.mark_line(point=True).encode(
        y=alt.Y("mean:Q", title=title, scale=alt.Scale(zero=False), axis=alt.Axis(format=fmt[:-1] or None)),
        opacity=_fade(pick), tooltip=tips).add_params(pick)
    return alt.layer(band, line, data=df)


def probe_intervals(df: pd.DataFrame) -> alt.Chart:
    """Probe accuracy by layer with its interval, a line per variant (control in grays), a panel per model
    and probe."""
    return _band(df, "accuracy", "test accuracy", ".1%").properties(width=250, height=170).facet(
        row=alt.Row("probe:N", title=None), column=alt.Column("model:N", title=None)).resolve_scale(x="independent")


def geometry_intervals(df: pd.DataFrame) -> alt.Chart:
    """Cosine measures by layer with intervals: a row per measure, a column per model."""
    return _band(df, "value", None, ".3f").properties(width=250, height=140).facet(
        row=alt.Row("measure:N", title=None, sort=list(dict.fromkeys(df["measure"]))),
        column=alt.Column("model:N", title=None)).resolve_scale(x="independent", y="independent")


def cka_lines(df: pd.DataFrame) -> alt.Chart:
    """Same-layer linear CKA of each fine-tuned epoch with its start, with intervals, per model."""
    chart = _band(df, "CKA", "linear CKA with the start", ".3f")
    return chart.properties(width=250, height=170).facet(column=alt.Column("model:N", title=None)).resolve_scale(
        x="independent")


def cka_map(df: pd.DataFrame) -> alt.Chart:
    """Layer-by-layer CKA heat maps (start's layer x fine-tuned layer), a panel per model and variant."""
    return alt.Chart(df).mark_rect().encode(
        x=alt.X("layer_to:O", title="fine-tuned layer", axis=alt.Axis(labelAngle=0)),
        y=alt.Y("layer_from:O", title="start's layer", sort="descending"),
        color=alt.Color("cka:Q", scale=alt.Scale(domain=[0, 1], scheme="viridis"), title="CKA"),
        tooltip=["model", "variant", "layer_from", "layer_to", alt.Tooltip("cka:Q", format=".3f")],
    ).properties(width=120, height=120).facet(row=alt.Row("model:N", title=None),
                                              column=alt.Column(VARIANT, sort=in_order(df), title=None)
                                              ).resolve_scale(x="independent", y="independent")


def domain_bars(df: pd.DataFrame) -> alt.Chart:
    """Accuracy per domain with interval ticks, bars per variant, a panel per model."""
    base = alt.Chart().encode(x=alt.X("domain:N", title=None, axis=alt.Axis(labelAngle=0)),
                              xOffset=alt.XOffset(VARIANT, sort=in_order(df)), color=variant_color(df))
    bars = base.mark_bar().encode(
        y=alt.Y("mean:Q", title="test accuracy", axis=alt.Axis(format="%"), scale=alt.Scale(domain=[0, 1])),
        tooltip=["model", "variant", "domain", "layer", alt.Tooltip("mean:Q", format=".1%"),
                 alt.Tooltip("lo:Q", format=".1%"), alt.Tooltip("hi:Q", format=".1%")])
    ticks = base.mark_rule(color="black").encode(y="lo:Q", y2="hi:Q")
    return alt.layer(bars, ticks, data=df).properties(width=260, height=170).facet(
        column=alt.Column("model:N", title=None))


def correlation(df: pd.DataFrame) -> alt.Chart:
    """The study's question as a number: Spearman rho of each cosine measure with probe accuracy, with interval."""
    base = alt.Chart(df).encode(y=alt.Y("measure:N", sort=list(df["measure"]), title="cosine measure"))
    rule = base.mark_rule().encode(x=alt.X("lo:Q", scale=alt.Scale(domain=[-1, 1]), title="Spearman rho"),
                                   x2="hi:Q")
    dots = base.mark_point(filled=True, size=70).encode(
        x="rho:Q", tooltip=["measure", "cells", alt.Tooltip("rho:Q", format=".3f"),
                            alt.Tooltip("lo:Q", format=".3f"), alt.Tooltip("hi:Q", format=".3f")])
    zero = alt.Chart(pd.DataFrame({"x": [0]})).mark_rule(color="gray", strokeDash=[2, 2]).encode(x="x:Q")
    return (rule + dots + zero).properties(width=WIDTH - 100, height=25 * len(df))


def cosine_hist(df: pd.DataFrame) -> alt.Chart:
    """Distribution of the token-pair cosines within a sentence, a line per variant, one panel per layer."""
    pick = _pick()
    chart = alt.Chart().mark_line(interpolate="step-after").encode(
        x=alt.X("lo:Q", title="cosine (bin start)", scale=alt.Scale(domain=[-1, 1])),
        y=alt.Y("share:Q", title="share of token pairs", axis=alt.Axis(format="%")),
        color=variant_color(df), opacity=_fade(pick),
        tooltip=["model:N", "variant:N", "layer:O", alt.Tooltip("lo:Q", format=".2f"),
                 alt.Tooltip("hi:Q", format=".2f"), alt.Tooltip("share:Q", format=".2%")],
    ).add_params(pick).properties(width=130, height=110)
    return chart.facet(row=alt.Row("model:N", title=None), column=alt.Column("layer:O", title="layer"), data=df)


def separation(df: pd.DataFrame) -> alt.Chart:
    """Mean cosine of test [CLS] pairs within a class minus across classes, by layer, a line per variant."""
    pick = _pick()
    lines = alt.Chart().mark_line(point=True).encode(
        x=alt.X("layer:O", axis=alt.Axis(labelAngle=0)),
        y=alt.Y("separation:Q", title="within − between-class cosine"), color=variant_color(df),
        opacity=_fade(pick), tooltip=["model:N", "variant:N", "layer:O", alt.Tooltip("within:Q", format=".3f"),
                                      alt.Tooltip("between:Q", format=".3f"),
                                      alt.Tooltip("separation:Q", format=".3f")],
    ).add_params(pick)
    zero = alt.Chart().mark_rule(color="gray", strokeDash=[2, 2]).encode(y=alt.datum(0))
    return alt.layer(lines, zero, data=df).properties(width=300, height=200).facet(
        column=alt.Column("model:N", title=None))


def probe_curves(df: pd.DataFrame) -> alt.Chart:
    """Test accuracy after each probe epoch at one layer, a line per variant; dashed: shuffled labels."""
    pick = _pick()
    lines = alt.Chart().mark_line().encode(
        x=alt.X("epoch:Q", title="probe epoch"),
        y=alt.Y("accuracy:Q", title="test accuracy", scale=alt.Scale(zero=False), axis=alt.Axis(format="%")),
        color=variant_color(df), strokeDash=alt.StrokeDash("probe:N", title="probe"), opacity=_fade(pick),
        tooltip=["model:N", "variant:N", "layer:O", "probe:N", "epoch:Q",
                 alt.Tooltip("accuracy:Q", format=".2%")],
    ).add_params(pick)
    return alt.layer(lines, data=df).properties(width=300, height=200).facet(column=alt.Column("model:N", title=None))
