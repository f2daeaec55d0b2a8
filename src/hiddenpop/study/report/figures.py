"""Figures for the run report.

Every figure is drawn twice from the same published table (so what it shows has been through small-cell
suppression): an interactive Plotly panel inlined in ``report.html``, and a static matplotlib version written to
``figures/NAME.png`` and ``figures/NAME.svg`` for slides, print and the Word summary. Each figure has a title,
axis titles with units, and a text alternative (``alt``) that says in words what it shows.

Conventions: the Okabe-Ito palette (safe for the common colour-vision deficiencies), counts on zero-based axes
(a log axis is said so in its title), no text labels inside crowded plots (hover and the tables carry them),
fixed Plotly div ids and SVG hash salt, and no dates in the static files, so a rerun writes the same bytes.
"""

from __future__ import annotations

import base64
import io
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from hiddenpop.formatting import format_interval, format_value, kind_for
from hiddenpop.study.report.content import area_rates, probability_text

if TYPE_CHECKING:
    from hiddenpop.study.context import RunContext
    from hiddenpop.study.tables import Published

#: Okabe & Ito (2008): blue, vermillion, bluish green, orange, reddish purple, sky blue, yellow, black.
PALETTE = ["#0072B2", "#D55E00", "#009E73", "#E69F00", "#CC79A7", "#56B4E9", "#F0E442", "#000000"]
GREY = "#8c8c8c"
BAND = "rgba(0, 114, 178, 0.18)"
#: Sequential colour scale of the map (viridis: ordered in lightness, readable in grey and by colour-blind readers).
MAP_SCALE = "Viridis"
#: matplotlib settings of the static figures (a fixed SVG hash salt keeps SVG element ids the same run to run).
MATPLOTLIB_STYLE = {"svg.hashsalt": "hiddenpop", "font.size": 9, "axes.spines.top": False,
                    "axes.spines.right": False}


@dataclass
class Figure:
    name: str
    title: str
    caption: str
    alt: str = ""  # what the figure shows, in words (the text alternative)
    html: str = ""  # interactive (Plotly) div
    png: str = ""  # base64 PNG, embedded when there is no interactive version
    files: tuple[str, ...] = ()  # static versions inside the run folder


def build_figures(context: RunContext, published: Published, folder: Path) -> dict[str, Figure]:
    """Render every figure the run's tables support; returns them by name (missing tables give no figure)."""
    # matplotlib is loaded only when this runs: importing it costs start-up time
    import matplotlib

    tables = published.tables
    figures: dict[str, Figure] = {}
    # The report's matplotlib style holds only while its figures are drawn: other code in the same process (a
    # simulation grid's figures, a user's notebook) keeps its own settings.
    with matplotlib.rc_context(MATPLOTLIB_STYLE):
        for builder in (_comparison, _map, _sensitivity, _consistency, _recall, _degrees, _ppc, _residuals, _rolling,
                        _importance,
                        _countries):
            figure = builder(context, tables, folder)
            if figure is not None:
                figures[figure.name] = figure
        for result in context.results.values():
            for name, extra in result.figures.items():
                figures[name] = _from_object(name, extra, folder)
    return figures


# --------------------------------------------------------------------------------------------- helpers
def _plotly_div(figure: Any, name: str, *, height: int | None = None) -> str:
    """The figure as a div without its own title (the report's heading above it is the title)."""
    figure.update_layout(template="plotly_white", margin={"l": 10, "r": 10, "t": 48, "b": 50},
                         font={"family": "system-ui, sans-serif", "size": 12}, colorway=PALETTE)
    if height is not None:
        figure.update_layout(height=height)
    return figure.to_html(full_html=False, include_plotlyjs=False, div_id=f"plot-{name}",
                          config={"displaylogo": False, "responsive": True})


def _pyplot():
    # matplotlib is loaded only when this runs: importing it costs start-up time
    import matplotlib

    matplotlib.use("Agg", force=True)
    # matplotlib is loaded only when this runs: importing it costs start-up time
    import matplotlib.pyplot as plt

    return plt


def _save(figure: Any, name: str, folder: Path) -> tuple[str, tuple[str, ...]]:
    """Write ``NAME.png`` and ``NAME.svg`` (no dates or software stamps); returns the PNG as base64."""
    # matplotlib is loaded only when this runs: importing it costs start-up time
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=120, bbox_inches="tight", metadata={"Software": None})
    png = buffer.getvalue()
    (folder / f"{name}.png").write_bytes(png)
    figure.savefig(folder / f"{name}.svg", format="svg", bbox_inches="tight", metadata={"Date": None, "Creator": None})
    plt.close(figure)
    return base64.b64encode(png).decode("ascii"), (f"figures/{name}.png", f"figures/{name}.svg")


def _shown(name: str, title: str, caption: str, *, alt: str, interactive: Any, static: Any, folder: Path,
           height: int) -> Figure:
    """A figure as the report shows it: interactive (Plotly) on the page, its static twin (matplotlib) saved as
    PNG and SVG for print and reuse."""
    _, files = _save(static, name, folder)
    return Figure(name, title, caption, alt=alt, files=files, html=_plotly_div(interactive, name, height=height))


def _wrap(text: str, width: int = 28) -> str:
    return "<br>".join(textwrap.wrap(str(text), width)) or str(text)


def _from_object(name: str, extra: Any, folder: Path) -> Figure:
    title = str(getattr(extra, "title", None) or name.replace("_", " "))
    if hasattr(extra, "to_html"):
        return Figure(name, title, "", alt=title, html=_plotly_div(extra, name))
    png, files = _save(extra, name, folder)
    return Figure(name, title, "", alt=title, png=png, files=files)


def _error_bars(lower: pd.Series, estimate: pd.Series, upper: pd.Series) -> dict[str, Any]:
    return {"type": "data", "symmetric": False, "array": (upper - estimate).clip(lower=0).fillna(0),
            "arrayminus": (estimate - lower).clip(lower=0).fillna(0), "thickness": 2}


# --------------------------------------------------------------------------------------------- the key comparison
def _comparison_rows(context: RunContext, tables: dict[str, pd.DataFrame]) -> pd.DataFrame | None:
    frame = tables.get("triangulation")
    if frame is None or frame.empty:
        return None
    frame = frame[frame["comparable"].astype(bool) & frame["estimate"].notna()].copy()
    if frame.empty:
        return None
    headline = tables["headline"]
    chosen = {(q, a, m) for q, a, m in zip(headline["quantity"], headline["analysis"], headline["method"],
                                           strict=True)}
    frame["headline"] = [(q, a, m) in chosen for q, a, m in zip(frame["quantity"], frame["analysis"],
                                                                frame["method"], strict=True)]
    titles = {name: result.title for name, result in context.results.items()}
    frame["source"] = [f"{titles.get(a, a)} ({m})" for a, m in zip(frame["analysis"], frame["method"], strict=True)]
    frame["usable"] = frame["status"].isin(["ok", "warnings"])
    return frame


def _comparison(context: RunContext, tables: dict[str, pd.DataFrame], folder: Path) -> Figure | None:
    """Each headline quantity as every method estimated it, the headline's own estimate first."""
    # Plotly is loaded only when this runs: importing it costs start-up time
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    frame = _comparison_rows(context, tables)
    if frame is None:
        return None
    quantities = list(dict.fromkeys(frame["quantity"]))
    labels = [frame.loc[frame["quantity"] == q, "label"].iloc[0] for q in quantities]
    heights = [max(1, int((frame["quantity"] == q).sum())) for q in quantities]
    figure = make_subplots(rows=len(quantities), cols=1, subplot_titles=labels, vertical_spacing=0.16,
                           row_heights=[h / sum(heights) for h in heights])
    plt = _pyplot()
    static, axes = plt.subplots(len(quantities), 1, figsize=(7, 1.0 + 0.75 * sum(heights)), squeeze=False,
                                gridspec_kw={"height_ratios": heights})
    alt = []
    for index, (quantity, label) in enumerate(zip(quantities, labels, strict=True), start=1):
        part = frame[frame["quantity"] == quantity].sort_values("headline", ascending=False, kind="stable")
        unit = part["unit"].iloc[0]
        kind = kind_for("estimate", unit)
        colours = [PALETTE[1] if h else (PALETTE[0] if u else GREY) for h, u in zip(part["headline"], part["usable"],
                                                                                   strict=True)]
        names = [_wrap(s) for s in part["source"]]
        hover = [f"{s}: {format_value(e, kind)} ({format_interval(lo, up, kind)})"
                 for s, e, lo, up in zip(part["source"], part["estimate"], part["lower"], part["upper"], strict=True)]
        figure.add_trace(go.Scatter(x=part["estimate"], y=names, mode="markers", showlegend=False,
                                    marker={"size": 11, "color": colours, "symbol": "diamond"},
                                    error_x=_error_bars(part["lower"], part["estimate"], part["upper"]),
                                    text=hover, hovertemplate="%{text}<extra></extra>"), row=index, col=1)
        top = float(np.nanmax(part[["estimate", "upper"]].to_numpy(dtype=float)))
        figure.update_xaxes(title_text=str(unit), range=[0, top * 1.08], row=index, col=1,
                            tickformat="," if kind == "count" else None)
        figure.update_yaxes(autorange="reversed", row=index, col=1)
        axis = axes[index - 1][0]
        y = np.arange(len(part))
        for position, (lower, upper, colour) in enumerate(zip(part["lower"], part["upper"], colours, strict=True)):
            if lower == lower and upper == upper:
                axis.plot([lower, upper], [position, position], color=colour, linewidth=2)
        axis.scatter(part["estimate"], y, c=colours, marker="D", zorder=3)
        axis.set_yticks(y, [textwrap.fill(s, 34) for s in part["source"]])
        axis.invert_yaxis()
        axis.set_xlim(0, top * 1.08)
        axis.set_title(label, loc="left", fontsize=10)
        axis.set_xlabel(str(unit))
        axis.xaxis.set_major_formatter(plt.FuncFormatter(lambda v, _, k=kind: format_value(v, k)))
        alt.append(f"{label}: " + "; ".join(h for h in hover))
    static.tight_layout()
    return _shown("comparison", "The headline beside every other method",
                  "Diamonds are estimates and bars their intervals; the headline's own estimate is orange and "
                  "first, other methods blue, fits that failed their checks grey. Axes start at zero.",
                  alt=". ".join(alt) + ".",
                  interactive=figure, static=static, folder=folder,
                  height=110 + 70 * sum(heights) + 60 * len(quantities))


# --------------------------------------------------------------------------------------------- the map
def _rings(feature: dict[str, Any]) -> list[np.ndarray]:
    geometry = feature["geometry"]
    polygons = geometry["coordinates"] if geometry["type"] == "MultiPolygon" else [geometry["coordinates"]]
    return [np.asarray(polygon[0], dtype=float)[:, :2] for polygon in polygons]


def _map(context: RunContext, tables: dict[str, pd.DataFrame], folder: Path) -> Figure | None:
    """A choropleth of area prevalence drawn from the study's boundaries (no tile server, no network), or, without
    boundaries, the areas ranked."""
    # Plotly is loaded only when this runs: importing it costs start-up time
    import plotly.graph_objects as go
    from plotly.colors import sample_colorscale

    frame, unit = area_rates(context, tables)
    if frame is None:
        return None
    stored = context.shared.get("area_geometry")
    if stored is None:
        return _area_bars(frame, unit, folder)
    geometry, key = stored
    frame = frame.assign(area=frame["area"].astype(str)).set_index("area")
    low, high = float(frame["estimate"].min()), float(frame["estimate"].max())
    span = (high - low) or 1.0
    names = frame["name"] if "name" in frame.columns else pd.Series(frame.index, index=frame.index)
    surveyed = frame.get("surveyed", pd.Series(False, index=frame.index)).fillna(False).astype(bool)
    figure = go.Figure()
    plt = _pyplot()
    # matplotlib is loaded only when this runs: importing it costs start-up time
    from matplotlib import cm
    from matplotlib.collections import PolyCollection
    from matplotlib.colors import Normalize

    static, axis = plt.subplots(figsize=(6.4, 6.4))
    norm = Normalize(low, high)
    shapes = 0
    polygons, colours, hatches = [], [], []
    for feature in geometry["features"]:
        area = str(feature["properties"][key]).strip()
        if area not in frame.index:
            continue
        row = frame.loc[area]
        colour = sample_colorscale(MAP_SCALE, [(row["estimate"] - low) / span])[0]
        done = "surveyed: direct estimate combined with the model" if surveyed[area] else \
            "not surveyed: predicted from data streams"
        hover = (f"<b>{names[area]}</b> ({area})<br>{format_value(row['estimate'], 'ratio')} {unit}<br>"
                 f"{_level_interval(row)}<br>{done}")
        for ring in _rings(feature):
            figure.add_trace(go.Scatter(
                x=ring[:, 0], y=ring[:, 1], mode="lines", fill="toself", fillcolor=colour, name=area,
                meta="area", line={"color": "white", "width": 0.6}, hoveron="fills", text=hover,
                hovertemplate="%{text}<extra></extra>", showlegend=False,
                fillpattern=None if surveyed[area] else {"shape": "/", "fgcolor": "rgba(255,255,255,0.55)",
                                                         "bgcolor": colour, "size": 6}))
            polygons.append(ring)
            colours.append(cm.viridis(norm(row["estimate"])))
            hatches.append("" if surveyed[area] else "////")
        shapes += 1
    figure.add_trace(go.Scatter(x=[None], y=[None], mode="markers", showlegend=False, hoverinfo="skip",
                                marker={"colorscale": MAP_SCALE, "cmin": low, "cmax": high, "color": [low],
                                        "showscale": True, "colorbar": {"title": {"text": _wrap(unit, 18)}}}))
    figure.update_xaxes(visible=False)
    figure.update_yaxes(visible=False, scaleanchor="x")
    for ring, colour, hatch in zip(polygons, colours, hatches, strict=True):
        axis.add_collection(PolyCollection([ring], facecolors=[colour], edgecolors="white", linewidths=0.4,
                                           hatch=hatch))
    axis.autoscale_view()
    axis.set_aspect("equal")
    axis.axis("off")
    static.colorbar(cm.ScalarMappable(norm=norm, cmap="viridis"), ax=axis, shrink=0.7, label=unit)
    axis.set_title(f"Estimated {unit}; hatched areas were not surveyed", fontsize=9)
    top = frame.sort_values("estimate", ascending=False).head(3)
    alt = (f"A map of {shapes} areas coloured by estimated {unit}, from {format_value(low, 'ratio')} to "
           f"{format_value(high, 'ratio')}; {int(surveyed.sum())} surveyed areas are solid and the others "
           f"hatched. Highest: " + ", ".join(f"{names[a]} ({format_value(v, 'ratio')})"
                                             for a, v in zip(top.index, top["estimate"], strict=True)) + ".")
    return _shown("map", "Where the estimate is highest",
                  f"Each area coloured by its estimate ({unit}). Surveyed areas are solid; hatched areas were not "
                  "surveyed and show a prediction from the data streams. Hover for the name and interval.",
                  alt=alt,
                  interactive=figure, static=static, folder=folder, height=560)


def _level_interval(row: pd.Series) -> str:
    level = row.get("level")
    words = "interval" if level is None or level != level else f"{format_value(float(level), 'percent')} interval"
    return f"{words} {format_interval(row['lower'], row['upper'], 'ratio')}"


def _area_bars(frame: pd.DataFrame, unit: str, folder: Path) -> Figure:
    """Without boundaries: the 30 highest areas as bars with their intervals."""
    # Plotly is loaded only when this runs: importing it costs start-up time
    import plotly.graph_objects as go

    ordered = frame.sort_values("estimate", ascending=False).head(30)
    labels = ordered["name"] if "name" in ordered.columns else ordered["area"]
    figure = go.Figure(go.Bar(x=labels, y=ordered["estimate"], marker={"color": PALETTE[0]},
                              error_y=_error_bars(ordered["lower"], ordered["estimate"], ordered["upper"])))
    figure.update_yaxes(title_text=unit, rangemode="tozero")
    figure.update_xaxes(title_text="area")
    plt = _pyplot()
    static, axis = plt.subplots(figsize=(7, 3.2))
    axis.bar(np.arange(len(ordered)), ordered["estimate"], color=PALETTE[0])
    axis.set_xticks(np.arange(len(ordered)), labels, rotation=90, fontsize=7)
    axis.set_ylabel(unit)
    return _shown("map", "Areas with the highest estimates",
                  "The 30 areas with the highest estimates and their intervals (the study file names no "
                  "boundaries, so no map is drawn).",
                  alt=f"Bars of the 30 highest area estimates ({unit}).",
                  interactive=figure, static=static, folder=folder, height=420)


# --------------------------------------------------------------------------------------------- assumptions
def _sensitivity(context: RunContext, tables: dict[str, pd.DataFrame], folder: Path) -> Figure | None:
    """Each headline count against each visibility factor held fixed across its plausible range."""
    # Plotly is loaded only when this runs: importing it costs start-up time
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
    figure = make_subplots(rows=len(counts), cols=len(factors), subplot_titles=titles, vertical_spacing=0.2,
                           horizontal_spacing=0.12)
    plt = _pyplot()
    static, axes = plt.subplots(len(counts), len(factors), figsize=(3.4 * len(factors), 2.6 * len(counts)),
                                squeeze=False)
    for row, quantity in enumerate(counts, start=1):
        for col, factor in enumerate(factors, start=1):
            part = frame[(frame["quantity"] == quantity) & (frame["factor"] == factor)].sort_values("value")
            x = part["value"].tolist()
            figure.add_trace(go.Scatter(x=x + x[::-1], y=part["upper"].tolist() + part["lower"].tolist()[::-1],
                                        fill="toself", fillcolor=BAND, line={"width": 0}, hoverinfo="skip",
                                        showlegend=False), row=row, col=col)
            figure.add_trace(go.Scatter(x=x, y=part["estimate"], mode="lines+markers", line={"color": PALETTE[0]},
                                        showlegend=False,
                                        hovertemplate=f"{labels[factor]} %{{x:.3g}}: %{{y:,.0f}}<extra></extra>"),
                             row=row, col=col)
            figure.update_xaxes(title_text=labels[factor], row=row, col=col)
            figure.update_yaxes(title_text="people", rangemode="tozero", row=row, col=col)
            axis = axes[row - 1][col - 1]
            axis.fill_between(x, part["lower"], part["upper"], color=PALETTE[0], alpha=0.18, linewidth=0)
            axis.plot(x, part["estimate"], color=PALETTE[0], marker="o", markersize=3)
            axis.set_ylim(bottom=0)
            axis.set_xlabel(labels[factor])
            axis.set_ylabel("people")
            axis.set_title(titles[(row - 1) * len(factors) + col - 1], fontsize=8, loc="left")
            axis.yaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: format_value(v, "count")))
    static.tight_layout()
    return _shown("headline_sensitivity", "How the headline moves with the visibility assumptions",
                  "Each panel holds one factor fixed at the value on the horizontal axis (the others as declared); "
                  "the line is the estimate and the band its interval, from the same bootstrap replicates.",
                  alt="Line charts of each headline count against " + " and ".join(labels[f] for f in factors)
                  + ": the estimate falls as the factor rises.",
                  interactive=figure, static=static, folder=folder, height=320 * len(counts) + 80)


# --------------------------------------------------------------------------------------------- diagnostics
def _consistency(context: RunContext, tables: dict[str, pd.DataFrame], folder: Path) -> Figure | None:
    # Plotly is loaded only when this runs: importing it costs start-up time
    import plotly.graph_objects as go

    frame = tables.get("nsum_consistency")
    if frame is None or frame.empty or not {"group", "known_size", "estimate"} <= set(frame.columns):
        return None
    frame = frame.dropna(subset=["known_size", "estimate"])
    frame = frame[(frame["known_size"] > 0) & (frame["estimate"] > 0)]
    if frame.empty:
        return None
    hover = [f"{g}: known {format_value(k, 'count')}, estimated {format_value(e, 'count')}"
             for g, k, e in zip(frame["group"], frame["known_size"], frame["estimate"], strict=True)]
    low = float(min(frame["known_size"].min(), frame["estimate"].min())) * 0.7
    high = float(max(frame["known_size"].max(), frame["estimate"].max())) * 1.4
    figure = go.Figure()
    figure.add_trace(go.Scatter(x=[low, high], y=[low, high], mode="lines", name="estimate = known size",
                                line={"dash": "dot", "color": GREY}, hoverinfo="skip"))
    figure.add_trace(go.Scatter(x=frame["known_size"], y=frame["estimate"], mode="markers", text=hover,
                                name="known group", hovertemplate="%{text}<extra></extra>",
                                marker={"size": 9, "color": PALETTE[1]}))
    decades = 10.0 ** np.arange(np.floor(np.log10(low)), np.ceil(np.log10(high)) + 1)
    ticks = {"tickvals": decades, "ticktext": [format_value(v, "count") for v in decades]}
    figure.update_xaxes(type="log", title_text="known size (people, log scale)", **ticks)
    figure.update_yaxes(type="log", title_text="estimated as if hidden (people, log scale)", **ticks)
    plt = _pyplot()
    static, axis = plt.subplots(figsize=(5, 4))
    axis.plot([low, high], [low, high], ls=":", color=GREY)
    axis.scatter(frame["known_size"], frame["estimate"], color=PALETTE[1])
    axis.set_xscale("log")
    axis.set_yscale("log")
    axis.set_xlabel("known size (people, log scale)")
    axis.set_ylabel("estimated as if hidden (people, log scale)")
    worst = frame.assign(gap=np.abs(np.log(frame["estimate"] / frame["known_size"]))).sort_values("gap").iloc[-1]
    return _shown("consistency", "Known-group consistency (leave one out)",
                  "Each known group estimated as if it were hidden; points far from the dotted line are groups "
                  "that are mis-sized or recalled badly. Both axes are logarithmic because group sizes span "
                  "orders of magnitude.",
                  alt=f"{len(frame)} known groups estimated as if hidden against their known sizes; the furthest "
                      f"from agreement is {worst['group']} (known {format_value(worst['known_size'], 'count')}, "
                      f"estimated {format_value(worst['estimate'], 'count')}).",
                  interactive=figure, static=static, folder=folder, height=440)


def _recall(context: RunContext, tables: dict[str, pd.DataFrame], folder: Path) -> Figure | None:
    """Reported over expected against group size: the known groups, the fitted recall curve with its bootstrap band
    and the hidden groups at their corrected sizes (on the curve by construction), one panel per curve."""
    # Plotly is loaded only when this runs: importing it costs start-up time
    from plotly.subplots import make_subplots

    frame = tables.get("nsum_recall")
    if frame is None or frame.empty or not {"method", "degree", "kind", "size", "ratio"} <= set(frame.columns):
        return None
    frame = frame[(pd.to_numeric(frame["size"], errors="coerce") > 0)
                  & (pd.to_numeric(frame["ratio"], errors="coerce") > 0)]
    panels = list(dict.fromkeys(zip(frame["method"], frame["degree"], strict=True)))
    if not panels:
        return None
    titles = [f"{method}, degree {degree}" for method, degree in panels]
    figure = make_subplots(rows=1, cols=len(panels), subplot_titles=[_wrap(t, 40) for t in titles])
    plt = _pyplot()
    static, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 4), squeeze=False)
    for col, ((method, degree), axis) in enumerate(zip(panels, axes[0], strict=True), start=1):
        part = frame[(frame["method"] == method) & (frame["degree"] == degree)]
        curve = part[part["kind"] == "curve"].sort_values("size")
        known = part[part["kind"] == "known"]
        hidden = part[part["kind"] == "hidden"]
        first = col == 1
        if {"lower", "upper"} <= set(curve.columns) and curve["lower"].notna().any():
            band = curve.dropna(subset=["lower", "upper"])
            figure.add_trace(_scatter(x=list(band["size"]) + list(band["size"])[::-1],
                                        y=list(band["upper"]) + list(band["lower"])[::-1], fill="toself",
                                        fillcolor=BAND, line={"width": 0}, name="curve interval",
                                        hoverinfo="skip", showlegend=first), row=1, col=col)
            axis.fill_between(band["size"], band["lower"], band["upper"], color=PALETTE[0], alpha=0.18, linewidth=0)
        figure.add_trace(_scatter(x=curve["size"], y=curve["ratio"], mode="lines", name="fitted recall curve",
                                    line={"color": PALETTE[0]}, hoverinfo="skip", showlegend=first), row=1, col=col)
        axis.plot(curve["size"], curve["ratio"], color=PALETTE[0], label="fitted recall curve")
        for rows, name, colour, symbol, marker in ((known, "known group", PALETTE[1], "circle", "o"),
                                                    (hidden, "hidden group (corrected size)", PALETTE[2], "diamond",
                                                     "D")):
            hover = [f"{g}: size {format_value(n, 'count')}, reported / expected {r:.2f}"
                     for g, n, r in zip(rows["group"], rows["size"], rows["ratio"], strict=True)]
            figure.add_trace(_scatter(x=rows["size"], y=rows["ratio"], mode="markers", text=hover, name=name,
                                        hovertemplate="%{text}<extra></extra>", showlegend=first,
                                        marker={"size": 9, "color": colour, "symbol": symbol}), row=1, col=col)
            axis.scatter(rows["size"], rows["ratio"], color=colour, marker=marker, label=name, zorder=3)
        axis.axhline(1.0, ls=":", color=GREY)
        axis.set_xscale("log")
        axis.set_yscale("log")
        axis.set_xlabel("group size (people, log scale)")
        axis.set_ylabel("reported / expected (log scale)")
        axis.yaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: f"{v:.3g}"))
        axis.yaxis.set_minor_formatter(plt.FuncFormatter(lambda v, _: f"{v:.3g}"))
        axis.set_title(textwrap.fill(titles[col - 1], 50), fontsize=8, loc="left")
        if first:
            axis.legend(fontsize=7, frameon=False)
        figure.update_xaxes(type="log", title_text="group size (people, log scale)", row=1, col=col)
        figure.update_yaxes(type="log", title_text="reported / expected (log scale)", row=1, col=col)
    static.tight_layout()
    known_all = frame[frame["kind"] == "known"]
    hidden_all = frame[frame["kind"] == "hidden"]
    outside = []
    for method, degree in panels:
        part = frame[(frame["method"] == method) & (frame["degree"] == degree)]
        sizes = part.loc[part["kind"] == "known", "size"]
        outside += [g for g, n in zip(part.loc[part["kind"] == "hidden", "group"],
                                      part.loc[part["kind"] == "hidden", "size"], strict=True)
                    if not sizes.min() <= n <= sizes.max()]
    return _shown("recall", "Recall curve of the known groups",
                  "Each known group's estimate as if it were hidden, over its known size (1 on the dotted line is "
                  "accurate recall), against its size; the line is the fitted log-linear recall curve and the band "
                  "its bootstrap interval. Hidden groups sit on the curve at their recall-corrected sizes; beyond "
                  "the known groups' sizes the curve is extrapolated.",
                  alt=f"{len(panels)} recall curve(s) fitted on {len(known_all)} known-group points (reported over "
                      f"expected against size), with {len(hidden_all)} hidden-group point(s) placed on them; "
                      + (f"outside the known sizes (extrapolated): {', '.join(map(str, outside))}."
                         if outside else "all within the known groups' sizes."),
                  interactive=figure, static=static, folder=folder, height=440)


def _scatter(**kwargs: Any) -> Any:
    # Plotly is loaded only when this runs: importing it costs start-up time
    import plotly.graph_objects as go

    return go.Scatter(**kwargs)


def _degrees(context: RunContext, tables: dict[str, pd.DataFrame], folder: Path) -> Figure | None:
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
            axis.annotate(f"{format_value(part['bin_left'].iloc[-1], 'count')}\nand more",
                          (left[tail][0] + width[tail][0] / 2, 0 if np.isnan(height) else height),
                          textcoords="offset points", xytext=(0, 3), ha="center", va="bottom", fontsize=7)
        axis.bar(left[shown], respondents.to_numpy()[shown], width=width[shown], align="edge", color=PALETTE[0],
                 edgecolor="white")
        axis.set_title(f"{name} network size", fontsize=9)
        axis.set_xlabel("estimated network size (people known)")
        axis.set_ylabel("respondents")
        axis.locator_params(axis="x", nbins=5)
    figure.tight_layout()
    png, files = _save(figure, "degrees", folder)
    return Figure("degrees", "Network size distributions",
                  "How many people respondents are estimated to know (bins under the suppression threshold are "
                  "left empty).", alt="Histograms of estimated network sizes for the " + " and ".join(degrees)
                  + " degrees.", png=png, files=files)


def _ppc(context: RunContext, tables: dict[str, pd.DataFrame], folder: Path) -> Figure | None:
    # Plotly is loaded only when this runs: importing it costs start-up time
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    frame = tables.get("nsum_bayes_ppc")
    if frame is None or frame.empty or not {"group", "observed", "lower", "upper"} <= set(frame.columns):
        return None
    if "statistic" not in frame.columns:
        frame = frame.assign(statistic="statistic")
    statistics = list(dict.fromkeys(frame["statistic"]))
    figure = make_subplots(rows=1, cols=len(statistics), subplot_titles=[str(s) for s in statistics],
                           shared_yaxes=True, horizontal_spacing=0.05)
    plt = _pyplot()
    groups = list(dict.fromkeys(frame["group"]))
    static, axes = plt.subplots(1, len(statistics), figsize=(3.2 * len(statistics) + 1.5, 0.3 * len(groups) + 1.2),
                                sharey=True, squeeze=False)
    outside_total = 0
    for index, statistic in enumerate(statistics, start=1):
        part = frame[frame["statistic"] == statistic]
        middle = (part["lower"] + part["upper"]) / 2
        outside = ~((part["observed"] >= part["lower"]) & (part["observed"] <= part["upper"]))
        outside_total += int(outside.sum())
        colours = np.where(outside, PALETTE[1], PALETTE[0])
        figure.add_trace(go.Scatter(x=middle, y=part["group"], mode="markers", showlegend=index == 1,
                                    name="predictive interval", marker={"size": 1, "color": GREY},
                                    error_x={"type": "data", "symmetric": False, "array": part["upper"] - middle,
                                             "arrayminus": middle - part["lower"], "color": GREY}),
                         row=1, col=index)
        figure.add_trace(go.Scatter(x=part["observed"], y=part["group"], mode="markers", showlegend=index == 1,
                                    name="observed (orange: outside)",
                                    marker={"size": 9, "symbol": "diamond", "color": colours}), row=1, col=index)
        figure.update_xaxes(title_text=str(statistic), row=1, col=index)
        axis = axes[0][index - 1]
        y = [groups.index(g) for g in part["group"]]
        axis.errorbar(middle, y, xerr=[middle - part["lower"], part["upper"] - middle], fmt="none", ecolor=GREY)
        axis.scatter(part["observed"], y, c=colours, marker="D", zorder=3)
        axis.set_xlabel(str(statistic))
    axes[0][0].set_yticks(range(len(groups)), groups)
    static.tight_layout()
    return _shown("ppc", "Posterior predictive checks",
                  "Observed statistics per group (diamonds) against the model's predictive interval (grey bars). "
                  "Blue diamonds lie inside their interval; orange ones outside, a group the model does not "
                  "reproduce.", alt=f"{len(groups)} groups checked on {len(statistics)} statistics; "
                  f"{outside_total} observed values fall outside their predictive interval.",
                  interactive=figure, static=static, folder=folder, height=26 * len(groups) + 180)


def _residuals(context: RunContext, tables: dict[str, pd.DataFrame], folder: Path) -> Figure | None:
    # Plotly is loaded only when this runs: importing it costs start-up time
    import plotly.graph_objects as go

    frame = tables.get("nsum_bayes_residuals")
    if frame is None or frame.empty or not {"group", "level", "mean_residual", "respondents"} <= set(frame.columns):
        return None
    groups = list(dict.fromkeys(frame["group"]))
    levels = list(dict.fromkeys(frame["level"]))
    covariate = str(frame["covariate"].iloc[0]) if "covariate" in frame.columns else None
    figure = go.Figure()
    plt = _pyplot()
    static, axis = plt.subplots(figsize=(7, 0.32 * len(groups) * max(1, min(len(levels), 3)) + 1.2))
    offsets = np.linspace(-0.3, 0.3, len(levels)) if len(levels) > 1 else np.zeros(1)
    flagged = 0
    for index, level in enumerate(levels):
        part = frame[frame["level"] == level]
        # two standard errors of a mean of N(0, 1) residuals: the band the mean stays in under the model
        half = 2.0 / np.sqrt(part["respondents"].clip(lower=1).to_numpy(dtype=float))
        mean = part["mean_residual"].to_numpy(dtype=float)
        flagged += int(np.sum(np.abs(mean) > half))
        colour = PALETTE[index % len(PALETTE)]
        name = str(level) if covariate is None else f"{covariate} {level}"
        figure.add_trace(go.Scatter(x=mean, y=part["group"], mode="markers", name=name,
                                    marker={"size": 8, "color": colour},
                                    error_x={"type": "data", "array": half, "color": colour}))
        y = np.array([groups.index(g) for g in part["group"]]) + offsets[index]
        axis.errorbar(mean, y, xerr=half, fmt="o", color=colour, label=name, markersize=4)
    figure.add_vline(x=0, line={"color": GREY, "dash": "dot"})
    figure.update_xaxes(title_text="mean randomized quantile residual")
    axis.axvline(0, color=GREY, linestyle=":")
    axis.set_yticks(range(len(groups)), groups)
    axis.set_xlabel("mean randomized quantile residual")
    if len(levels) > 1:
        axis.legend(fontsize=7, loc="best")
    static.tight_layout()
    by = f" by {covariate}" if covariate is not None else ""
    return _shown("residuals", f"Bayesian model: quantile residuals{by}",
                  "Mean randomized quantile residual of each group's answers (points) with the band of two standard "
                  "errors the mean stays in when the model is right (bars: 2 / square root of the respondents). "
                  "A group whose mean moves away from 0 with the covariate has barrier effects that depend on it, "
                  "which the model does not capture.",
                  alt=f"{len(groups)} groups in {len(levels)} covariate level(s); {flagged} means lie more than two "
                      "standard errors from 0.",
                  interactive=figure, static=static, folder=folder, height=30 * len(groups) + 200)


# --------------------------------------------------------------------------------------------- other sections
def _rolling(context: RunContext, tables: dict[str, pd.DataFrame], folder: Path) -> Figure | None:
    # Plotly is loaded only when this runs: importing it costs start-up time
    import plotly.graph_objects as go

    frame = tables.get("rolling_series")
    if frame is None or frame.empty or not {"window_start", "estimate"} <= set(frame.columns):
        return None
    frame = frame.sort_values("window_start")
    x = pd.to_datetime(frame["window_start"]).dt.strftime("%Y-%m-%d").tolist()
    figure = go.Figure()
    plt = _pyplot()
    static, axis = plt.subplots(figsize=(7, 3))
    positions = np.arange(len(x))
    if {"lower", "upper"} <= set(frame.columns):
        figure.add_trace(go.Scatter(x=x + x[::-1], y=list(frame["upper"]) + list(frame["lower"][::-1]),
                                    fill="toself", fillcolor=BAND, line={"width": 0}, name="interval",
                                    hoverinfo="skip"))
        axis.fill_between(positions, frame["lower"], frame["upper"], color=PALETTE[0], alpha=0.18, linewidth=0)
    figure.add_trace(go.Scatter(x=x, y=frame["estimate"], mode="lines+markers", name="estimated active",
                                line={"color": PALETTE[0]}))
    axis.plot(positions, frame["estimate"], color=PALETTE[0], marker="o", label="estimated active")
    if "observed" in frame.columns:
        figure.add_trace(go.Scatter(x=x, y=frame["observed"], mode="lines", name="observed",
                                    line={"color": PALETTE[3], "dash": "dot"}))
        axis.plot(positions, pd.to_numeric(frame["observed"], errors="coerce"), color=PALETTE[3], ls=":",
                  label="observed")
    figure.update_yaxes(title_text="identifiers", rangemode="tozero")
    figure.update_xaxes(title_text="window start")
    axis.set_xticks(positions, x, rotation=30, ha="right", fontsize=7)
    axis.locator_params(axis="x", nbins=12)
    axis.set_ylim(bottom=0)
    axis.set_ylabel("identifiers")
    axis.legend(frameon=False)
    return _shown("rolling", "Identifiers active in each window",
                  "Estimated number of identifiers active in each window (line; band: interval) against the "
                  "number observed (dotted). Identifiers are not people.",
                  alt=f"{len(frame)} windows from {x[0]} to {x[-1]}; the estimate ranges from "
                      f"{format_value(frame['estimate'].min(), 'count')} to "
                      f"{format_value(frame['estimate'].max(), 'count')} identifiers.",
                  interactive=figure, static=static, folder=folder, height=380)


def _importance(context: RunContext, tables: dict[str, pd.DataFrame], folder: Path) -> Figure | None:
    # Plotly is loaded only when this runs: importing it costs start-up time
    import plotly.graph_objects as go

    frame = tables.get("stream_importance")
    if frame is None or frame.empty or not {"stream", "importance"} <= set(frame.columns):
        return None
    ordered = frame.sort_values("importance")
    colours = [PALETTE[2] if v > 0 else GREY for v in ordered["importance"]]
    figure = go.Figure(go.Bar(x=ordered["importance"], y=ordered["stream"], orientation="h",
                              marker={"color": colours}))
    figure.update_xaxes(title_text="loss in accuracy when the stream is scrambled")
    figure.update_yaxes(title_text="data stream")
    plt = _pyplot()
    static, axis = plt.subplots(figsize=(6, 0.35 * len(ordered) + 1))
    axis.barh(ordered["stream"], ordered["importance"], color=colours)
    axis.axvline(0, color="black", linewidth=0.6)
    axis.set_xlabel("loss in accuracy when the stream is scrambled")
    useless = ordered.loc[ordered["importance"] <= 0, "stream"].tolist()
    return _shown("importance", "Which data streams predict prevalence",
                  "Loss in predictive accuracy when a whole data stream is scrambled (grouped permutation "
                  "importance): longer bars carry more information. Grey bars at or below zero are streams the "
                  "model does as well without (scrambling them changed nothing beyond noise).",
                  alt="Most informative: " + ", ".join(ordered["stream"].iloc[::-1].head(3))
                  + (f"; no information: {', '.join(useless)}" if useless else "") + ".",
                  interactive=figure, static=static, folder=folder, height=32 * len(ordered) + 140)



# --------------------------------------------------------------------------------------------- countries compared
def _countries(context: RunContext, tables: dict[str, pd.DataFrame], folder: Path) -> Figure | None:
    """Each receiving country's rate (or count) with its exact interval, largest first, the focus country in
    vermillion; countries whose counts are suppressed are left out (and said so)."""
    # Plotly is loaded only when this runs: importing it costs start-up time
    import plotly.graph_objects as go

    frame = tables.get("compare_countries")
    if frame is None or frame.empty:
        return None
    shown = frame[~frame["suppressed"].astype(bool)].copy()
    for column in ("estimate", "lower", "upper", "p_first"):
        shown[column] = pd.to_numeric(shown[column], errors="coerce")
    shown = shown.dropna(subset=["estimate"]).sort_values("estimate", ascending=False, kind="stable")
    if shown.empty:
        return None
    hidden = len(frame) - len(shown)
    unit = str(shown["unit"].iloc[0])
    kind = kind_for("estimate", unit)
    focus = shown["focus"].astype(bool).to_numpy()
    colours = [PALETTE[1] if f else PALETTE[0] for f in focus]
    names = [str(n) for n in shown["name"]]
    hover = [f"{n}: {format_value(e, kind)} ({_level_interval(row)}); probability of ranking first "
             f"{probability_text(p)}" for n, e, p, (_, row) in
             zip(names, shown["estimate"], shown["p_first"], shown.iterrows(), strict=True)]
    figure = go.Figure(go.Scatter(x=shown["estimate"], y=[_wrap(n, 24) for n in names], mode="markers",
                                  marker={"size": 10, "color": colours, "symbol": "diamond"},
                                  error_x=_error_bars(shown["lower"], shown["estimate"], shown["upper"]),
                                  text=hover, hovertemplate="%{text}<extra></extra>", showlegend=False))
    top = float(np.nanmax(shown[["estimate", "upper"]].to_numpy(dtype=float)))
    figure.update_xaxes(title_text=unit, range=[0, top * 1.05], tickformat="," if kind == "count" else None)
    figure.update_yaxes(title_text="receiving country", autorange="reversed")
    plt = _pyplot()
    static, axis = plt.subplots(figsize=(7, 0.32 * len(shown) + 1.2))
    y = np.arange(len(shown))
    for position, (lower, upper, colour) in enumerate(zip(shown["lower"], shown["upper"], colours, strict=True)):
        axis.plot([lower, upper], [position, position], color=colour, linewidth=2)
    axis.scatter(shown["estimate"], y, c=colours, marker="D", zorder=3)
    axis.set_yticks(y, names)
    axis.invert_yaxis()
    axis.set_xlim(0, top * 1.05)
    axis.set_xlabel(unit)
    axis.xaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: format_value(v, kind)))
    _, files = _save(static, "compare", folder)
    first = shown.iloc[0]
    focus_rows = shown[focus]
    words = [f"{len(shown)} receiving countries, {unit}, largest first"
             + (f" ({hidden} with suppressed counts not shown)" if hidden else "")
             + f". Highest: {first['name']} at {format_value(first['estimate'], kind)} "
               f"({format_interval(first['lower'], first['upper'], kind)})"]
    if len(shown) > 1:
        second = shown.iloc[1]
        words.append(f"next {second['name']} at {format_value(second['estimate'], kind)} "
                     f"({format_interval(second['lower'], second['upper'], kind)})")
    if len(focus_rows):
        row = focus_rows.iloc[0]
        words.append(f"the focus country, {row['name']}, ranks first with probability "
                     f"{probability_text(row['p_first'])}")
    caption = (f"Diamonds are {'rates' if kind != 'count' else 'counts'} and bars their exact Poisson intervals; "
               "the focus country is orange-red, the others blue. The axis starts at zero."
               + (f" {hidden} countries whose counts are suppressed (fewer than the threshold, or hidden so that "
                  "they cannot be worked out from the totals) are not drawn." if hidden else ""))
    return Figure("compare", "Referrals by receiving country", caption, alt="; ".join(words) + ".", files=files,
                  html=_plotly_div(figure, "compare", height=28 * len(shown) + 160))
