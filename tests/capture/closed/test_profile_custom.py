"""Profile intervals for arbitrary designs (used by list model selection) and custom log-linear models."""

from __future__ import annotations

import pytest

from hiddenpop.capture.closed.models import fit_closed, fit_custom
from hiddenpop.capture.closed.profile import profile_ci_design
from hiddenpop.capture.core.histories import Histories, all_patterns
from hiddenpop.capture.core.loglinear import interaction_design
from refdata import CAPTURE_DATA, load_fixture


def test_uk_five_lists_selected_model_profile_interval():
    fixture = load_fixture("capture_uk_modern_slavery_5_lists.json")
    data = Histories.from_file(CAPTURE_DATA / "mse_UKdat_5.csv")
    terms = fixture["selected_interactions_in_order"]
    design, names = interaction_design(all_patterns(5), terms, data.labels)
    ci = profile_ci_design(design, data.cell_counts(), names=names, observed=data.observed)
    exp = fixture["expected"]
    rel = fixture["tolerance"]["abundance_relative"]
    tol = fixture["tolerance"]["profile_ci_absolute"]
    assert ci.poisson_abundance == pytest.approx(exp["poisson_abundance"], rel=rel)
    assert ci.stderr == pytest.approx(exp["stderr"], rel=1e-4)  # exact information vs R's penultimate IRLS step
    assert ci.multinomial_abundance == pytest.approx(exp["profile_multinomial_abundance"], abs=tol)
    assert ci.lower == pytest.approx(exp["lower95"], abs=tol)
    assert ci.upper == pytest.approx(exp["upper95"], abs=tol)
    custom = fit_custom(data, terms, algorithm="glm")
    for key in ("deviance", "df", "aic", "bic"):
        assert getattr(custom, key) == pytest.approx(exp[key], rel=rel), key
    assert custom.stderr == pytest.approx(exp["stderr"], rel=rel)


def test_custom_models_reduce_to_named_models():
    hare = Histories.from_file(CAPTURE_DATA / "rcapture_hare.csv")
    assert fit_custom(hare, []).abundance == pytest.approx(fit_closed(hare, "Mt").abundance, rel=1e-10)
    chao = fit_custom(hare, [], heterogeneity="Chao")
    named = fit_closed(hare, "Mth Chao (LB)")
    assert chao.abundance == pytest.approx(named.abundance, rel=1e-10)
    assert chao.deviance == pytest.approx(named.deviance, rel=1e-10)
    two_way = fit_custom(hare, ["c1:c2", "2:3"])
    assert two_way.rank == fit_closed(hare, "Mt").rank + 2
    from hiddenpop.errors import ConfigError

    with pytest.raises(ConfigError, match="unknown list"):
        fit_custom(hare, ["c1:zz"])
    with pytest.raises(ConfigError, match="two or more"):
        fit_custom(hare, ["c1:c1"])
