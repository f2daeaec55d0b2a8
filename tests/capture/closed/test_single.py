"""Single-source estimators: the published zero-truncated Poisson regression, closed forms, and simulation."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from hiddenpop.capture.closed.single import chao_single, zelterman, zero_truncated_poisson
from refdata import CAPTURE_DATA

NETHERLANDS = CAPTURE_DATA / "singlercapture_netherlandsimmigrant.csv"


def test_zero_truncated_poisson_regression_reproduces_van_der_heijden_2003(run_cli):
    """Illegal immigrants in four Dutch cities, capture ~ gender + age + nation: N = 12,690 (se 2,808)."""
    done = run_cli("capture", "single", NETHERLANDS, "--count-column", "capture", "--covariate", "gender",
                   "--covariate", "age", "--covariate", "nation", "--model", "ztpoisson", "--format", "json")
    assert done.returncode == 0, done.stderr
    (row,) = json.loads(done.stdout)["estimates"]
    assert row["estimate"] == pytest.approx(12_690, abs=0.5)
    assert row["se"] == pytest.approx(2_808, abs=0.5)
    assert row["lower"] < row["estimate"] < row["upper"]


def test_closed_forms_on_a_small_table():
    counts = np.array([1, 1, 1, 1, 2, 2, 3])  # n = 7, f1 = 4, f2 = 2
    chao = chao_single(counts)
    assert chao["estimate"] == pytest.approx(11.0)  # 7 + 4^2 / (2 * 2)
    assert chao["se"] == pytest.approx(math.sqrt(28.0))  # 2 * (2^4/4 + 2^3 + 2^2/2)
    zel = zelterman(counts)  # lambda = 2 * 2 / 4 = 1
    assert zel["estimate"] == pytest.approx(7 / (1 - math.exp(-1)))
    # without covariates the zero-truncated Poisson size solves mean(y) = lambda / (1 - exp(-lambda))
    ztp = zero_truncated_poisson(counts)
    lam = -math.log(1 - 7 / ztp["estimate"])
    assert lam / (1 - math.exp(-lam)) == pytest.approx(counts.mean(), rel=1e-9)
    assert math.isnan(zelterman(np.array([1, 1, 3]))["estimate"])  # no twos: undefined, said so


@pytest.mark.parametrize("estimator", [zero_truncated_poisson, zelterman, chao_single])
def test_each_estimator_covers_the_truth_by_simulation(estimator):
    """Homogeneous Poisson sightings (rate 0.8) of 2,000 units: 95% intervals cover N in at least 88% of 100
    replicates and the mean relative bias is under 2%."""
    population, hits, errors = 2000, [], []
    for seed in range(100):
        seen = np.random.default_rng(seed).poisson(0.8, population)
        row = estimator(seen[seen > 0])
        hits.append(row["lower"] <= population <= row["upper"])
        errors.append(row["estimate"] / population - 1)
    assert np.mean(hits) >= 0.88
    assert abs(np.mean(errors)) < 0.02


@pytest.mark.parametrize("bad", ["0", "2.5", "99999999999999999999"])
def test_counts_that_are_not_sightings_are_an_input_error(tmp_path, run_cli, bad):
    path = tmp_path / "seen.csv"
    path.write_text(f"times\n1\n2\n{bad}\n")
    done = run_cli("capture", "single", path, "--count-column", "times")
    assert done.returncode == 2
    assert done.stderr.strip() == ("error: seen.csv, row 3, column 'times': expected a whole number of sightings "
                                   "from 1 to 2^53 (units never seen are not in the file)")
