"""Figures for the run report: interactive Plotly panels (inlined in ``report.html``) and static matplotlib PNGs
(written to ``figures/`` for slides and print, and embedded in the report as data URIs).

Every figure is built from a published table of the run, never from raw data, so what the figures show has
already been through small-cell suppression. Plotly divs get fixed ids so the same run renders the same HTML.
"""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from hiddenpop.study.context import RunContext
    from hiddenpop.study.tables import Published

PALETTE = ["#1f4e79", "#c0504d", "#4f8a3c", "#8064a2", "#d28a1d", "#3b9ab2"]


@dataclass
class Figure:
    name: str
    title: str
    caption: str
    html: str = ""  # interactive (Plotly) div
    png: str = ""  # base64 PNG (matplotlib)
    png_path: str = ""  # relative path of the PNG inside the run folder


def build_figures(context: RunContext, published: Published, folder: Path) -> dict[str, Figure]:
    """Render every figure the run's tables support; returns them by name (missing tables give no figure)."""
    tables = published.tables
    figures: dict[str, Figure] = {}
    for builder in (_triangulation, _sensitivity, _headline_png, _consistency, _degrees_png, _ppc, _rolling, _areas,
                    _importance):
        figure = builder(context, tables, folder)
        if figure is not None:
            figures[figure.name] = figure
    for result in context.results.values():
        for name, extra in result.figures.items():
            figures[name] = _from_object(name, extra, folder)
    return figures


# --------------------------------------------------------------------------------------------- helpers
def _plotly_div(figure: Any, name: str) -> str:
    figure.update_layout(template="plotly_white", margin={"l": 10, "r": 10, "t": 40, "b": 40},
                         font={"family": "system-ui, sans-serif", "size": 12})
    return figure.to_html(full_html=False, include_plotlyjs=False, div_id=f"plot-{name}",
                          config={"displaylogo": False, "responsive": True})


def _png(figure: Any, name: str, folder: Path) -> tuple[str, str]:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight", metadata={"Software": None})
    plt.close(figure)
    data = buffer.getvalue()
    path = folder / f"{name}.png"
    path.write_bytes(data)
    return base64.b64encode(data).decode("ascii"), f"figures/{name}.png"


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _from_object(name: str, extra: Any, folder: Path) -> Figure:
    title = getattr(extra, "title", None) or name.replace("_", " ")
    if hasattr(extra, "to_html"):
        return Figure(name, str(title), "", html=_plotly_div(extra, name))
    png, path = _png(extra, name, folder)
    return Figure(name, str(title), "", png=png, png_path=path)


# --------------------------------------------------------------------------------------------- figures
def _triangulation(context: RunContext, tables: dict[str, pd.DataFrame], folder: Path) -> Figure | None:
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    frame = tables.get("triangulation")
    if frame is None or frame.empty:
        return None
    frame = frame[frame["comparable"].astype(bool) & frame["estimate"].notna()]
    quantities = list(dict.fromkeys(frame["quantity"]))
    if not quantities:
        return None
    labels = [frame.loc[frame["quantity"] == q, "label"].iloc[0] for q in quantities]
    figure = make_subplots(rows=len(quantities), cols=1, subplot_titles=labels, vertical_spacing=0.12)
    for index, quantity in enumerate(quantities, start=1):
        part = frame[frame["quantity"] == quantity]
        names = [f"{a} · {m}" for a, m in zip(part["analysis"], part["method"], strict=True)]
        colours = ["#999999" if s not in ("ok", "warnings") else PALETTE[0] for s in part["status"]]
        figure.add_trace(go.Scatter(
            x=part["estimate"], y=names, mode="markers", marker={"size": 10, "color": colours},
            error_x={"type": "data", "symmetric": False,
                     "array": (part["upper"] - part["estimate"]).clip(lower=0).fillna(0),
                     "arrayminus": (part["estimate"] - part["lower"]).clip(lower=0).fillna(0)},
            hovertemplate="%{y}: %{x:,.3~s}<extra></extra>", showlegend=False), row=index, col=1)
    figure.update_layout(height=170 * len(quantities) + 80)
    return Figure("triangulation", "Independent methods side by side",
                  "Points are estimates, bars their intervals. Grey marks a fit that failed its diagnostic gates.",
                  html=_plotly_div(figure, "triangulation"))


def _sensitivity(context: RunContext, tables: dict[str, pd.DataFrame], folder: Path) -> Figure | None:
    """Each headline count against each visibility factor held fixed across its plausible range."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    frame = tables.get("headline_sensitivity")
    if frame is None or frame.empty:
        return None
    counts = [c.name for c in context.study.combine.values() if c.name in set(frame["quantity"])]
    factors = list(dict.fromkeys(frame["factor"]))
    if not counts:
        return None
    labels = dict(zip(frame["factor"], frame["label_factor"], strict=False))
    titles = [f"{frame.loc[frame['quantity'] == q, 'label'].iloc[0]} vs {labels[f]}" for q in counts
              for f in factors]
    figure = make_subplots(rows=len(counts), cols=len(factors), subplot_titles=titles, vertical_spacing=0.18,
                           horizontal_spacing=0.1)
    for row, quantity in enumerate(counts, start=1):
        for col, factor in enumerate(factors, start=1):
            part = frame[(frame["quantity"] == quantity) & (frame["factor"] == factor)].sort_values("value")
            x = part["value"].tolist()
            figure.add_trace(go.Scatter(x=x + x[::-1], y=part["upper"].tolist() + part["lower"].tolist()[::-1],
                                        fill="toself", fillcolor="rgba(31, 78, 121, 0.15)", line={"width": 0},
                                        hoverinfo="skip", showlegend=False), row=row, col=col)
            figure.add_trace(go.Scatter(x=x, y=part["estimate"], mode="lines+markers",
                                        line={"color": PALETTE[0]}, showlegend=False,
                                        hovertemplate=f"{labels[factor]} %{{x:.3g}}: %{{y:,.0f}}<extra></extra>"),
                             row=row, col=col)
            figure.update_xaxes(title_text=labels[factor], row=row, col=col)
            figure.update_yaxes(title_text="people", rangemode="tozero", row=row, col=col)
    figure.update_layout(height=300 * len(counts) + 60)
    return Figure("headline_sensitivity", "How the headline moves with the visibility assumptions",
                  "Each panel holds one factor fixed at the value on the horizontal axis (the others as declared); "
                  "the line is the estimate and the band its interval, from the same bootstrap replicates.",
                  html=_plotly_div(figure, "headline_sensitivity"))


def _headline_png(context: RunContext, tables: dict[str, pd.DataFrame], folder: Path) -> Figure | None:
    frame = tables.get("headline")
    if frame is None:
        return None
    frame = frame[frame["unit"] == "people"].dropna(subset=["estimate"])
    if frame.empty:
        return None
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(7, 0.6 * len(frame) + 1.2))
    y = np.arange(len(frame))
    axis.errorbar(frame["estimate"], y, xerr=[(frame["estimate"] - frame["lower"]).clip(lower=0).fillna(0),
                                             (frame["upper"] - frame["estimate"]).clip(lower=0).fillna(0)],
                  fmt="o", capsize=4, color=PALETTE[0])
    axis.set_yticks(y, [f"{label}\n({analysis})" for label, analysis in zip(frame["label"], frame["analysis"],
                                                                             strict=True)])
    axis.invert_yaxis()
    axis.xaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: f"{v:,.0f}"))
    axis.set_xlabel("people")
    axis.grid(axis="x", alpha=0.3)
    png, path = _png(figure, "headline", folder)
    return Figure("headline", "Headline estimates", "Estimates with their intervals.", png=png, png_path=path)


def _consistency(context: RunContext, tables: dict[str, pd.DataFrame], folder: Path) -> Figure | None:
    import plotly.graph_objects as go

    frame = tables.get("nsum_consistency")
    if frame is None or frame.empty or not {"group", "known_size", "estimate"} <= set(frame.columns):
        return None
    figure = go.Figure()
    figure.add_trace(go.Scatter(x=frame["known_size"], y=frame["estimate"], mode="markers+text",
                                text=frame["group"], textposition="top center", showlegend=False,
                                marker={"size": 9, "color": PALETTE[1]}))
    low = float(min(frame["known_size"].min(), frame["estimate"].min())) * 0.8
    high = float(max(frame["known_size"].max(), frame["estimate"].max())) * 1.2
    figure.add_trace(go.Scatter(x=[low, high], y=[low, high], mode="lines", showlegend=False,
                                line={"dash": "dot", "color": "#777"}))
    figure.update_xaxes(type="log", title="known size")
    figure.update_yaxes(type="log", title="held-out estimate")
    figure.update_layout(height=420)
    return Figure("consistency", "Known-group consistency (leave one out)",
                  "Each known group estimated as if it were hidden. Points far from the dotted line are groups "
                  "that are mis-sized or recalled badly.", html=_plotly_div(figure, "consistency"))


def _degrees_png(context: RunContext, tables: dict[str, pd.DataFrame], folder: Path) -> Figure | None:
    frame = tables.get("nsum_degree_histogram")
    if frame is None or frame.empty:
        return None
    plt = _pyplot()
    degrees = list(dict.fromkeys(frame["degree"]))
    figure, axes = plt.subplots(1, len(degrees), figsize=(4.2 * len(degrees), 3.2), squeeze=False)
    for axis, name in zip(axes[0], degrees, strict=True):
        part = frame[frame["degree"] == name]
        respondents = pd.to_numeric(part["respondents"], errors="coerce").astype(float)
        shown = respondents.notna().to_numpy()  # suppressed bins stay empty (never drawn as zero)
        left = part["bin_left"].to_numpy(dtype=float)
        width = part["bin_right"].to_numpy(dtype=float) - left
        tail = part["open_ended"].to_numpy(dtype=bool) if "open_ended" in part else np.zeros(len(part), dtype=bool)
        if tail.any() and (~tail).any():  # the degrees above the 99th percentile: one bar of the usual width
            width[tail] = width[~tail][0]
            height = respondents.to_numpy()[tail][0]
            axis.annotate(f"{part['bin_left'].iloc[-1]:,.0f}\nto {part['bin_right'].iloc[-1]:,.0f}",
                          (left[tail][0] + width[tail][0] / 2, 0 if np.isnan(height) else height),
                          textcoords="offset points", xytext=(0, 3), ha="center", va="bottom", fontsize=7)
        axis.bar(left[shown], respondents.to_numpy()[shown], width=width[shown], align="edge", color=PALETTE[0],
                 edgecolor="white")
        axis.set_title(f"{name} network size")
        axis.set_xlabel("estimated degree")
        axis.set_ylabel("respondents")
    png, path = _png(figure, "degrees", folder)
    return Figure("degrees", "Network size distributions",
                  "How many people respondents are estimated to know (bins under the suppression threshold "
                  "are hidden).", png=png, png_path=path)


def _ppc(context: RunContext, tables: dict[str, pd.DataFrame], folder: Path) -> Figure | None:
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    frame = tables.get("nsum_bayes_ppc")
    if frame is None or frame.empty or not {"group", "observed", "lower", "upper"} <= set(frame.columns):
        return None
    if "statistic" not in frame.columns:
        frame = frame.assign(statistic="")
    statistics = list(dict.fromkeys(frame["statistic"]))
    figure = make_subplots(rows=1, cols=len(statistics), subplot_titles=[str(s) for s in statistics],
                           shared_yaxes=True, horizontal_spacing=0.04)
    for index, statistic in enumerate(statistics, start=1):
        part = frame[frame["statistic"] == statistic]
        middle = (part["lower"] + part["upper"]) / 2
        outside = part.get("outside_interval", pd.Series(False, index=part.index)).fillna(False).astype(bool)
        figure.add_trace(go.Scatter(x=middle, y=part["group"], mode="markers", showlegend=index == 1,
                                    name="posterior predictive interval", marker={"size": 1, "color": PALETTE[0]},
                                    error_x={"type": "data", "symmetric": False, "array": part["upper"] - middle,
                                             "arrayminus": middle - part["lower"]}), row=1, col=index)
        figure.add_trace(go.Scatter(x=part["observed"], y=part["group"], mode="markers", showlegend=index == 1,
                                    name="observed", marker={"size": 9, "symbol": "diamond",
                                                             "color": np.where(outside, "#a4262c", PALETTE[1])}),
                         row=1, col=index)
    figure.update_layout(height=26 * frame["group"].nunique() + 160)
    return Figure("ppc", "Posterior predictive checks",
                  "Observed statistics per group (diamonds) against the model's 95% predictive interval (bars). "
                  "A red diamond lies outside its interval: a group the model does not reproduce.",
                  html=_plotly_div(figure, "ppc"))


def _rolling(context: RunContext, tables: dict[str, pd.DataFrame], folder: Path) -> Figure | None:
    import plotly.graph_objects as go

    frame = tables.get("rolling_series")
    if frame is None or frame.empty or not {"window_start", "estimate"} <= set(frame.columns):
        return None
    frame = frame.sort_values("window_start")
    x = pd.to_datetime(frame["window_start"]).dt.strftime("%Y-%m-%d")
    figure = go.Figure()
    if {"lower", "upper"} <= set(frame.columns):
        figure.add_trace(go.Scatter(x=list(x) + list(x[::-1]),
                                    y=list(frame["upper"]) + list(frame["lower"][::-1]),
                                    fill="toself", fillcolor="rgba(31,78,121,0.15)", line={"width": 0},
                                    name="interval", hoverinfo="skip"))
    figure.add_trace(go.Scatter(x=x, y=frame["estimate"], mode="lines+markers", name="estimate",
                                line={"color": PALETTE[0]}))
    if "observed" in frame.columns:
        figure.add_trace(go.Scatter(x=x, y=frame["observed"], mode="lines", name="observed",
                                    line={"color": "#777", "dash": "dot"}))
    figure.update_layout(height=380, yaxis_title="identifiers")
    return Figure("rolling", "Rolling capture-recapture series",
                  "Estimated number of identifiers active in each window, with its interval, against the number "
                  "observed.", html=_plotly_div(figure, "rolling"))


def _areas(context: RunContext, tables: dict[str, pd.DataFrame], folder: Path) -> Figure | None:
    import plotly.graph_objects as go

    frame = tables.get("area_estimates")
    if frame is None or frame.empty or "estimate" not in frame.columns:
        return None
    if {"longitude", "latitude"} <= set(frame.columns):
        surveyed = frame.get("surveyed", pd.Series(False, index=frame.index)).fillna(False).astype(bool)
        figure = go.Figure(go.Scatter(
            x=frame["longitude"], y=frame["latitude"], mode="markers", text=frame["area"],
            marker={"size": np.where(surveyed, 9, 6), "color": frame["estimate"], "colorscale": "Viridis",
                    "colorbar": {"title": "estimate"}, "line": {"width": np.where(surveyed, 1.2, 0),
                                                                "color": "black"}},
            hovertemplate="%{text}: %{marker.color:.3~g}<extra></extra>"))
        figure.update_xaxes(title="longitude")
        figure.update_yaxes(title="latitude", scaleanchor="x")
        figure.update_layout(height=560)
        caption = "Each point is an area at its centroid, coloured by its estimate; outlined points were surveyed."
    else:
        ordered = frame.sort_values("estimate", ascending=False).head(40)
        figure = go.Figure(go.Bar(x=ordered["area"], y=ordered["estimate"], marker={"color": PALETTE[0]}))
        figure.update_layout(height=380)
        caption = "The 40 areas with the highest estimates."
    return Figure("areas", "Area estimates", caption, html=_plotly_div(figure, "areas"))


def _importance(context: RunContext, tables: dict[str, pd.DataFrame], folder: Path) -> Figure | None:
    import plotly.graph_objects as go

    frame = tables.get("stream_importance")
    if frame is None or frame.empty or not {"stream", "importance"} <= set(frame.columns):
        return None
    ordered = frame.sort_values("importance")
    figure = go.Figure(go.Bar(x=ordered["importance"], y=ordered["stream"], orientation="h",
                              marker={"color": PALETTE[2]}))
    figure.update_layout(height=30 * len(ordered) + 120, xaxis_title="importance")
    return Figure("importance", "Which data streams predict prevalence",
                  "Loss in predictive accuracy when a whole data stream is scrambled (grouped permutation "
                  "importance). Longer bars mean the stream carries more information.",
                  html=_plotly_div(figure, "importance"))
