"""The bundled reference datasets: every file intact and described, loading and export, the repository standing
alone (nothing read from outside it)."""

from __future__ import annotations

import pytest

from hiddenpop import datasets
from hiddenpop.errors import ConfigError


def test_every_bundled_file_is_registered_intact_with_source_and_licence():
    registry = datasets.list()
    folder = datasets.path("rcapture_hare").parents[1]
    on_disk = {p.relative_to(folder).as_posix() for p in folder.rglob("*.csv")}
    assert set(registry["file"]) == on_disk and registry["name"].is_unique
    for row in registry.to_dict(orient="records"):
        assert datasets.verify(row["name"]), f"{row['file']} differs from its recorded SHA-256"
        assert row["source"] and row["licence"] and row["description"], row["name"]


def test_load_and_path_give_the_same_data():
    hare = datasets.load("rcapture_hare")
    assert hare.shape == (68, 6) and set(hare.to_numpy().ravel()) <= {0, 1}
    uk = datasets.load("mse_UKdat_5")
    assert int(uk.iloc[:, -1].sum()) == 2744
    assert datasets.path("mse_UKdat_5").is_file()
    assert datasets.info("singlercapture_netherlandsimmigrant")["licence"].startswith("MIT")


def test_an_unknown_name_suggests_the_closest():
    with pytest.raises(ConfigError, match="did you mean 'rcapture_hare'"):
        datasets.path("rcapture_hair")


def test_export_writes_files_and_never_overwrites(run_cli, tmp_path):
    done = run_cli("datasets", "export", "rcapture_hare", "care1_HAV", "--out-dir", tmp_path / "data")
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "data" / "rcapture_hare.csv").read_bytes() == datasets.path("rcapture_hare").read_bytes()
    again = run_cli("datasets", "export", "rcapture_hare", "--out-dir", tmp_path / "data")
    assert again.returncode == 2 and "already exists" in again.stderr
    unknown = run_cli("datasets", "export", "nope", "--out-dir", tmp_path / "other")
    assert unknown.returncode == 2 and unknown.stderr.startswith("error: ") and not (tmp_path / "other").exists()


def test_the_test_suite_reads_nothing_outside_the_repository():
    from refdata import CAPTURE_DATA, FIXTURES, NSUM_DATA, ROOT

    for folder in (CAPTURE_DATA, NSUM_DATA, FIXTURES):
        assert ROOT in folder.resolve().parents or ROOT.parent not in folder.resolve().parents
        assert "shared" not in folder.resolve().parts
