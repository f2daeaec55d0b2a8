"""Property-based tests (hypothesis): what theory says must not change, does not change.

* NSUM: permuting respondents, relabelling groups and scaling every known size together with the population by c
  leave prevalence estimates N_hat / N unchanged and multiply sizes by c (the Killworth MLE, PIMLE and mean of
  sums are all homogeneous of degree one in (N_k, N)).
* Closed capture-recapture: permuting individuals leaves every model unchanged; permuting occasions leaves the
  occasion-symmetric models (M0, Mt, Mh Chao, Mth Chao) unchanged.
* Readers: a CSV with a UTF-8 BOM, CRLF line ends and Unicode headers reads exactly as the plain file.

Example counts are modest to keep the suite fast.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from hiddenpop import nsum
from hiddenpop.capture.closed.models import fit_closed
from hiddenpop.capture.core.histories import Histories
from hiddenpop.data import ARD, read_table

FAST = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
KNOWN = {"k1": 20_000.0, "k2": 50_000.0, "k3": 5_000.0}
POPULATION = 1_000_000.0
METHODS = ["mle", "pimle", "mos"]


@st.composite
def surveys(draw):
    n = draw(st.integers(3, 25))
    known = draw(arrays(np.int64, (n, 3), elements=st.integers(0, 40)))
    known[:, 0] = np.maximum(known[:, 0], 1)  # every respondent has a positive degree, every group is reported
    hidden = draw(arrays(np.int64, (n, 2), elements=st.integers(0, 5)))
    weights = draw(arrays(np.float64, n, elements=st.floats(0.5, 5.0)))
    frame = pd.DataFrame(np.column_stack([known, hidden]), columns=["k1", "k2", "k3", "h1", "h2"])
    frame.loc[0, ["k2", "k3"]] = np.maximum(frame.loc[0, ["k2", "k3"]], 1)
    frame["w"] = weights
    return frame


def _estimate(frame, known=KNOWN, population=POPULATION, names=("k1", "k2", "k3", "h1", "h2")):
    renamed = frame.rename(columns=dict(zip(["k1", "k2", "k3", "h1", "h2"], names, strict=True)))
    table = pd.DataFrame({"group": list(names[:3]), "size": list(known.values())})
    ard = ARD.from_frame(renamed, known=table, population=population, hidden=list(names[3:]), weights="w")
    return nsum.estimate(ard, method=METHODS).table.set_index(["quantity", "method"])["estimate"]


@FAST
@given(surveys(), st.randoms(use_true_random=False))
def test_nsum_invariant_to_respondent_order(frame, rnd):
    order = list(range(len(frame)))
    rnd.shuffle(order)
    base = _estimate(frame)
    permuted = _estimate(frame.iloc[order].reset_index(drop=True))
    np.testing.assert_allclose(permuted.loc[base.index].to_numpy(), base.to_numpy(), rtol=1e-10, atol=1e-8)


@FAST
@given(surveys())
def test_nsum_invariant_to_group_labels(frame):
    base = _estimate(frame)
    names = ("médicos", "lawyers 2", "Z", "víctimas", "h-2")
    relabelled = _estimate(frame, names=names)
    np.testing.assert_allclose(relabelled.to_numpy(), base.to_numpy(), rtol=1e-12)


@FAST
@given(surveys(), st.floats(0.01, 100.0))
def test_nsum_scaling_known_sizes_and_population(frame, scale):
    base = _estimate(frame)
    scaled = _estimate(frame, known={k: v * scale for k, v in KNOWN.items()}, population=POPULATION * scale)
    np.testing.assert_allclose(scaled.to_numpy(), scale * base.to_numpy(), rtol=1e-9, atol=1e-9)


@st.composite
def capture_data(draw):
    t = draw(st.integers(3, 5))
    n = draw(st.integers(15, 80))
    caught = draw(arrays(np.uint8, (n, t), elements=st.integers(0, 1)))
    caught = caught[caught.any(axis=1)]
    # enough recaptures for the models to be identified
    extra = np.ones((3, t), dtype=np.uint8)
    extra[1, 0] = 0
    extra[2, -1] = 0
    return np.vstack([caught, extra, np.eye(t, dtype=np.uint8), np.eye(t, dtype=np.uint8)])


@FAST
@given(capture_data(), st.randoms(use_true_random=False))
def test_closed_models_invariant_to_individual_order(caught, rnd):
    order = list(range(len(caught)))
    rnd.shuffle(order)
    for model in ("M0", "Mt", "Mb", "Mh Chao (LB)"):
        a = fit_closed(Histories.from_patterns(caught), model).abundance
        b = fit_closed(Histories.from_patterns(caught[order]), model).abundance
        assert a == b or np.isclose(a, b, rtol=1e-9)


@FAST
@given(capture_data(), st.randoms(use_true_random=False))
def test_symmetric_models_invariant_to_occasion_order(caught, rnd):
    columns = list(range(caught.shape[1]))
    rnd.shuffle(columns)
    for model in ("M0", "Mt", "Mh Chao (LB)", "Mth Chao (LB)"):
        a = fit_closed(Histories.from_patterns(caught), model)
        b = fit_closed(Histories.from_patterns(caught[:, columns]), model)
        if a.converged and b.converged and np.isfinite(a.abundance) and a.abundance < 1e6:
            np.testing.assert_allclose(b.abundance, a.abundance, rtol=1e-6)
            np.testing.assert_allclose(b.stderr, a.stderr, rtol=1e-4)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.lists(st.text(alphabet=st.characters(categories=["L"]), min_size=1, max_size=8), min_size=2, max_size=4,
             unique_by=lambda s: s.strip().casefold()),
    arrays(np.int64, (4, 4), elements=st.integers(0, 10**6)),
)
def test_bom_crlf_unicode_csv_reads_like_plain(tmp_path_factory, headers, values):
    folder = tmp_path_factory.mktemp("csv")
    headers = [h.strip() or "x" for h in headers]
    frame = pd.DataFrame(values[:, : len(headers)], columns=headers)
    plain = folder / "plain.csv"
    fancy = folder / "fancy.csv"
    text = frame.to_csv(index=False, lineterminator="\n")
    plain.write_text(text, encoding="utf-8")
    fancy.write_bytes(b"\xef\xbb\xbf" + text.replace("\n", "\r\n").encode("utf-8"))
    pd.testing.assert_frame_equal(read_table(fancy), read_table(plain))
    pd.testing.assert_frame_equal(read_table(plain), frame)
