"""Self-contained choropleth maps of area estimates (Plotly; the JavaScript is embedded, so it works offline)."""

from __future__ import annotations

from typing import Any

import pandas as pd


def choropleth_html(table: pd.DataFrame, geometry: dict[str, Any], key: str, title: str = "prevalence") -> str:
    """An HTML page with a choropleth of ``table['estimate']`` (per 1,000) over the GeoJSON ``geometry``.

    ``key`` is the feature property holding the area id (matched to ``table['area']``). Hover shows the interval
    and whether the area was surveyed.
    """
    # Plotly is loaded only when this runs: importing it costs start-up time
    import plotly.graph_objects as go

    per_thousand = 1000.0 * table["estimate"]
    hover = [
        f"{area}<br>{est:.2f} per 1,000 [{lo:.2f}, {hi:.2f}]<br>{'surveyed' if s else 'not surveyed'}"
        for area, est, lo, hi, s in zip(
            table["area"], per_thousand, 1000.0 * table["lower"], 1000.0 * table["upper"], table["surveyed"],
            strict=True,
        )
    ]
    figure = go.Figure(
        go.Choropleth(
            geojson=geometry,
            featureidkey=f"properties.{key}",
            locations=table["area"].astype(str),
            z=per_thousand,
            text=hover,
            hoverinfo="text",
            colorscale="Viridis",
            colorbar={"title": "per 1,000"},
            marker_line_width=0.2,
        )
    )
    figure.update_geos(fitbounds="locations", visible=False)
    figure.update_layout(title=title, margin={"l": 0, "r": 0, "t": 40, "b": 0})
    # a fixed element id (Plotly draws a random one), so the same estimates always give the same file
    return figure.to_html(include_plotlyjs=True, full_html=True, div_id="area-map")
