"""Plausible area boundaries for synthetic countries: Voronoi cells of the area centroids, clipped to a box.

Each cell is the set of points nearer its centroid than any other, so neighbouring cells share an edge and the
cells tile the box with no gaps or overlaps. A cell is built by clipping the box with the half-plane of each
Delaunay neighbour (the only centroids whose bisector can bound the cell). Vertices that two cells compute
separately are merged when closer than ``1e-7`` and written to 6 decimals, so shared corners are identical in
the GeoJSON and the smallarea family's "polygons sharing a vertex" finds the neighbours.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.spatial import Delaunay, cKDTree

__all__ = ["feature_collection", "voronoi_cells"]

#: Vertices closer than this are one vertex (well below the 6 decimals written).
MERGE = 1e-7


def _clip(polygon: np.ndarray, normal: np.ndarray, offset: float) -> np.ndarray:
    """The part of a convex polygon (counter-clockwise vertices) where ``normal . x <= offset``."""
    side = polygon @ normal - offset
    kept = []
    for i in range(len(polygon)):
        j = (i + 1) % len(polygon)
        a, b, sa, sb = polygon[i], polygon[j], side[i], side[j]
        if sa <= 0:
            kept.append(a)
        if (sa < 0 < sb) or (sb < 0 < sa):
            kept.append(a + (b - a) * (sa / (sa - sb)))
    return np.array(kept).reshape(-1, 2)


def voronoi_cells(points: np.ndarray, box: tuple[float, float, float, float]) -> list[np.ndarray]:
    """The Voronoi cell of each point inside ``box = (west, south, east, north)`` as an array of vertices,
    counter-clockwise, first vertex not repeated. Points must be distinct and inside the box."""
    points = np.asarray(points, dtype=float)
    west, south, east, north = box
    if not ((points[:, 0] > west) & (points[:, 0] < east) & (points[:, 1] > south) & (points[:, 1] < north)).all():
        raise ValueError("every point must lie strictly inside the box")
    square = np.array([[west, south], [east, south], [east, north], [west, north]], dtype=float)
    if len(points) == 1:
        return [square]
    if len(points) < 4:
        neighbours = [[j for j in range(len(points)) if j != i] for i in range(len(points))]
    else:
        pointer, index = Delaunay(points).vertex_neighbor_vertices
        neighbours = [index[pointer[i]:pointer[i + 1]] for i in range(len(points))]
    cells = []
    for i, point in enumerate(points):
        cell = square
        for j in neighbours[i]:
            other = points[j]
            normal = other - point
            cell = _clip(cell, normal, float(normal @ (point + other) / 2))
        cells.append(cell)
    # Merge vertices computed separately by neighbouring cells, so shared corners are equal.
    everything = np.vstack(cells)
    canonical = np.arange(len(everything))
    for a, b in sorted(cKDTree(everything).query_pairs(MERGE)):
        root_a, root_b = a, b
        while canonical[root_a] != root_a:
            root_a = canonical[root_a]
        while canonical[root_b] != root_b:
            root_b = canonical[root_b]
        canonical[max(root_a, root_b)] = min(root_a, root_b)
    for k in range(len(canonical)):
        root = k
        while canonical[root] != root:
            root = canonical[root]
        canonical[k] = root
    merged = np.round(everything[canonical], 6)
    out, start = [], 0
    for cell in cells:
        vertices = merged[start:start + len(cell)]
        start += len(cell)
        keep = np.ones(len(vertices), dtype=bool)  # drop repeats left by merging
        keep[1:] = np.any(vertices[1:] != vertices[:-1], axis=1)
        vertices = vertices[keep]
        if len(vertices) > 1 and np.all(vertices[0] == vertices[-1]):
            vertices = vertices[:-1]
        out.append(vertices)
    return out


def feature_collection(ids: list[str], cells: list[np.ndarray], key: str = "area_id",
                       names: list[str] | None = None) -> dict[str, Any]:
    """A GeoJSON FeatureCollection of closed polygon rings, one feature per id (property ``key``, and ``name``
    when given)."""
    features = []
    for number, (area, cell) in enumerate(zip(ids, cells, strict=True)):
        ring = [[float(x), float(y)] for x, y in cell]
        ring.append(ring[0])
        properties = {key: str(area)}
        if names is not None:
            properties["name"] = str(names[number])
        features.append({"type": "Feature", "properties": properties,
                         "geometry": {"type": "Polygon", "coordinates": [ring]}})
    return {"type": "FeatureCollection", "features": features}
