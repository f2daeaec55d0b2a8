"""Voronoi area boundaries: they tile the box, each cell holds its own centroid and every point of a cell is
nearest that centroid, and neighbouring cells share identical corners (so vertex contiguity finds them)."""

from __future__ import annotations

import numpy as np
import pytest

from hiddenpop.simulate.geometry import feature_collection, voronoi_cells
from hiddenpop.smallarea.areas import _pairs_from_geometry


def _area(cell: np.ndarray) -> float:
    x, y = cell[:, 0], cell[:, 1]
    return 0.5 * float(np.sum(x * np.roll(y, -1) - np.roll(x, -1) * y))


def _inside(cell: np.ndarray, point: np.ndarray) -> bool:
    edges = np.roll(cell, -1, axis=0) - cell
    return bool(np.all(edges[:, 0] * (point[1] - cell[:, 1]) - edges[:, 1] * (point[0] - cell[:, 0]) >= -1e-9))


@pytest.mark.parametrize("n", [1, 2, 3, 5, 40, 300])
def test_cells_tile_the_box_and_hold_their_points(n):
    rng = np.random.default_rng(n)
    box = (0.0, 0.0, 4.0, 3.0)
    points = np.column_stack([rng.uniform(0.1, 3.9, n), rng.uniform(0.1, 2.9, n)])
    cells = voronoi_cells(points, box)
    areas = np.array([_area(cell) for cell in cells])
    assert (areas > 0).all()  # counter-clockwise, non-degenerate
    assert areas.sum() == pytest.approx(12.0, abs=1e-5)  # no gaps, no overlaps (vertices are rounded to 6 dp)
    for cell, point in zip(cells, points, strict=True):
        assert _inside(cell, point)
    # Nearest-centroid property: random points of each cell are no nearer any other centroid.
    probes = np.column_stack([rng.uniform(0, 4, 400), rng.uniform(0, 3, 400)])
    nearest = np.argmin(((probes[:, None, :] - points[None, :, :]) ** 2).sum(axis=2), axis=1)
    for probe, owner in zip(probes, nearest, strict=True):
        holders = [i for i, cell in enumerate(cells) if _inside(cell, probe)]
        assert owner in holders


def test_grid_points_give_square_cells_with_rook_and_queen_neighbours():
    xs, ys = np.meshgrid(np.arange(3) + 0.5, np.arange(3) + 0.5)
    points = np.column_stack([xs.ravel(), ys.ravel()])
    cells = voronoi_cells(points, (0.0, 0.0, 3.0, 3.0))
    for cell, point in zip(cells, points, strict=True):
        assert _area(cell) == pytest.approx(1.0)
        assert np.allclose(np.sort(cell[:, 0]), np.sort(np.repeat([point[0] - 0.5, point[0] + 0.5], 2)))
    ids = [f"a{i}" for i in range(9)]
    geometry = feature_collection(ids, cells, key="id", names=[f"Place {i}" for i in range(9)])
    pairs = _pairs_from_geometry(geometry, "id", {a: i for i, a in enumerate(ids)})
    # Queen contiguity of a 3 x 3 grid: 12 edge pairs plus 8 diagonal pairs.
    assert len(pairs) == 20
    feature = geometry["features"][4]
    assert feature["properties"] == {"id": "a4", "name": "Place 4"}
    ring = feature["geometry"]["coordinates"][0]
    assert ring[0] == ring[-1] and len(ring) == 5


def test_neighbouring_cells_share_exact_vertices():
    rng = np.random.default_rng(3)
    points = np.column_stack([rng.normal(5, 1, 200), rng.normal(5, 1, 200)])
    box = (points[:, 0].min() - 1, points[:, 1].min() - 1, points[:, 0].max() + 1, points[:, 1].max() + 1)
    cells = voronoi_cells(points, box)
    ids = [str(i) for i in range(200)]
    pairs = _pairs_from_geometry(feature_collection(ids, cells), "area_id", {a: i for i, a in enumerate(ids)})
    from scipy.spatial import Delaunay

    pointer, index = Delaunay(points).vertex_neighbor_vertices
    delaunay = {(min(i, j), max(i, j)) for i in range(200) for j in index[pointer[i]:pointer[i + 1]]}
    found = {tuple(p) for p in pairs}
    # Every pair of cells sharing a vertex is a Delaunay pair, and nearly every Delaunay pair shares a vertex (pairs
    # whose shared edge falls outside the box do not).
    assert found <= delaunay
    assert len(found) >= 0.9 * len(delaunay)


def test_points_outside_the_box_are_refused():
    with pytest.raises(ValueError, match="inside the box"):
        voronoi_cells(np.array([[0.5, 0.5], [2.0, 0.5]]), (0.0, 0.0, 1.0, 1.0))
