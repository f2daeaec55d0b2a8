"""Estimating the generalized-NSUM visibility factors from data, as distributions the visibility model consumes.

Two sources (formulas, assumptions and failure modes in ``docs/methods/visibility.md``):

* **Game of contacts** (Salganik, Mello, Abdo, Bertoni, Fazito & Bastos 2011): a survey of the hidden population
  (usually recruited by respondent-driven sampling) in which each respondent i lists alters and says, for each,
  whether the alter knows that i belongs to the hidden group. With a_i aware alters out of t_i, weights w_i and
  network sizes d_i,

      tau^   = sum_i w_i a_i / sum_i w_i t_i                 (transmission rate: share of ties that carry membership)
      dbar_H = sum_i w_i d_i / sum_i w_i                     (hidden members' mean degree)
      delta^ = dbar_H / dbar_F                               (dbar_F: the frame's mean degree, from the general survey)

  With RDS-II weights w_i = 1 / d_i (Volz & Heckathorn 2008) tau^ is the ratio of two RDS-II means, as the
  networkreporting package's draft RDS vignette computes it, and dbar_H is the harmonic mean of the d_i.
  Intervals come from a bootstrap that resamples the recruitment trees (Baraff, McCormick & Raftery 2016) or, for a
  sample of independent respondents, the respondents themselves.

* **Known-group calibration from ARD alone**: in the general survey, known group k's reporting rate relative to all
  known groups', r_k = (sum_i w_i y_ik / N_k) / (sum_i w_i sum_K y_iK / sum_K N_K), estimates delta_k / delta_K
  (its members' mean degree relative to the known groups' members', when recall is accurate and tau_k = 1); the
  basic estimate of a hidden group with the known-population degree is off by the same factor delta_H / delta_K. If the hidden group's log degree ratio is exchangeable with those of
  named reference groups, log delta_H ~ Normal(mean, sd) of their log r_k; the predictive distribution for a new
  group is LogNormal(exp(mean), sd * sqrt(1 + 1/K)) (K reference groups), widened so its central interval matches
  Student's t with K - 1 degrees of freedom.

Each estimate is returned with the :class:`~hiddenpop.nsum.adjust.Declared` factor it implies (Beta for tau,
LogNormal for delta, both moment-matched and rounded to four significant digits, so the object and the pasted text
are the same distribution) and the ``[visibility.NAME]`` text a study file takes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hiddenpop import distributions
from hiddenpop.data.ard import ARD
from hiddenpop.data.io import missing_column, read_table
from hiddenpop.errors import ConfigError, DataError, ModelError, locate
from hiddenpop.nsum.adjust import Beta, Declared, LogNormal
from hiddenpop.nsum.specs import RESAMPLING, WEIGHTINGS, GameOfContactsOptions
from hiddenpop.results import Estimates

__all__ = ["GameOfContacts", "beta_from_moments", "declaration", "degree_ratio_from_known", "game_of_contacts",
           "game_of_contacts_file", "lognormal_from_log_moments", "read_game_of_contacts", "recruitment_forest",
           "tree_bootstrap_counts"]

def _sig(value: float, digits: int = 4) -> float:
    """``value`` rounded to ``digits`` significant digits (the precision of a declaration's text)."""
    if value == 0 or not math.isfinite(value):
        return value
    return float(f"{value:.{digits}g}")


def beta_from_moments(mean: float, sd: float) -> Beta:
    """The Beta with this mean and standard deviation (method of moments), parameters to 4 significant digits."""
    if not (0 < mean < 1):
        raise ModelError(f"a transmission rate estimated at {mean:g} cannot be a Beta mean (it must lie strictly "
                         "between 0 and 1); declare a constant instead")
    variance = sd * sd
    if not (0 < variance < mean * (1 - mean)):
        raise ModelError("the transmission rate's standard error is zero or too large for a Beta distribution "
                         f"(sd {sd:.3g} with mean {mean:.3g}); use more bootstrap replicates or more respondents")
    total = mean * (1 - mean) / variance - 1
    return Beta(_sig(mean * total), _sig((1 - mean) * total))


def lognormal_from_log_moments(median: float, sdlog: float) -> LogNormal:
    """LogNormal(median, sdlog), both to 4 significant digits."""
    if not (median > 0 and math.isfinite(median)):
        raise ModelError("a degree ratio must be positive to be declared as a lognormal")
    if not (sdlog > 0 and math.isfinite(sdlog)):
        raise ModelError("the degree ratio's log-scale standard deviation is zero or not finite; it cannot be "
                         "declared as a lognormal (use more replicates, or declare a constant)")
    return LogNormal(_sig(median), _sig(sdlog))


def declaration(name: str, factor: str, distribution: Beta | LogNormal, source: str) -> str:
    """The ``[visibility.NAME]`` table a study file takes for this factor."""
    quoted = source.replace("\\", "\\\\").replace('"', '\\"')
    return (f"[visibility.{name}]\nfactor = \"{factor}\"\ndistribution = \"{distribution.text}\"\n"
            f"source = \"{quoted}\"\n")


# ------------------------------------------------------------------------------------------------ the data
@dataclass
class GameOfContacts:
    """A validated game-of-contacts survey: per-respondent counts, weights inputs and the recruitment forest."""

    aware: np.ndarray
    alters: np.ndarray
    degree: np.ndarray | None
    weights: np.ndarray | None
    parent: np.ndarray | None  # index of the recruiter in the sample, -1 for a tree root; None: no coupons
    source: str = "game of contacts"
    degree_column: str = ""

    @property
    def n(self) -> int:
        return int(self.aware.size)


def _column(frame: pd.DataFrame, column: str, source: str, role: str) -> pd.Series:
    if column not in frame.columns:
        raise missing_column(source, column, frame.columns, role=role, error=ConfigError)
    return frame[column]


def _numbers(frame: pd.DataFrame, column: str, source: str, role: str, *, whole: bool) -> np.ndarray:
    """One numeric column, refused at its first bad cell (row and column named, the value never echoed)."""
    raw = _column(frame, column, source, role)
    if pd.api.types.is_bool_dtype(raw):
        raise DataError(f"{locate(source, None, column)}the {role} holds true/false values; recode them as numbers")
    values = pd.to_numeric(raw, errors="coerce").astype(float).to_numpy()
    present = raw.notna().to_numpy()
    if pd.api.types.is_object_dtype(raw) or pd.api.types.is_string_dtype(raw):
        present = present & (raw.astype("string").str.strip().fillna("").to_numpy() != "")
    checks = [
        (present & np.isnan(values), "is not a number"),
        (~np.isfinite(values) & ~np.isnan(values), "is infinite"),
        (~present, "is empty; give every respondent a value (or remove the row)"),
        (values < 0, "is negative; counts and network sizes are >= 0"),
    ]
    if whole:
        checks.append((np.isfinite(values) & (values != np.floor(values)), "is not a whole number"))
    for bad, what in checks:
        if bad.any():
            row = int(np.flatnonzero(bad)[0]) + 1
            raise DataError(f"{locate(source, row, column)}the {role} {what}")
    return values


def _coupon_keys(raw: pd.Series) -> list[str | None]:
    """Coupon cells as comparable text: whole numbers lose a trailing '.0', blanks are None."""
    keys: list[str | None] = []
    for value in raw.tolist():
        if value is None or (isinstance(value, float) and math.isnan(value)):
            keys.append(None)
            continue
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        text = str(value).strip()
        keys.append(text or None)
    return keys


def recruitment_forest(frame: pd.DataFrame, coupon: str, issued: Sequence[str], source: str) -> np.ndarray:
    """Each respondent's recruiter (row index) from coupon numbers; -1 for a seed.

    A respondent whose own coupon no sampled respondent issued (or whose coupon cell is empty) roots a tree.
    """
    own = _coupon_keys(_column(frame, coupon, source, "the respondent's own coupon"))
    seen: dict[str, int] = {}
    for row, key in enumerate(own):
        if key is None:
            continue
        if key in seen:
            raise DataError(f"{locate(source, row + 1, coupon)}coupon number repeats that of row {seen[key] + 1}; "
                            "each respondent's own coupon must be unique")
        seen[key] = row
    issuer: dict[str, int] = {}
    for column in issued:
        for row, key in enumerate(_coupon_keys(_column(frame, column, source, "a coupon the respondent issued"))):
            if key is None:
                continue
            if key in issuer and issuer[key] != row:
                raise DataError(f"{locate(source, row + 1, column)}issued coupon is also issued by row "
                                f"{issuer[key] + 1}; each coupon has one issuer")
            issuer[key] = row
    parent = np.array([issuer.get(key, -1) if key is not None else -1 for key in own], dtype=int)
    for row in range(parent.size):
        if parent[row] == row:
            raise DataError(f"{locate(source, row + 1, coupon)}the respondent issued their own coupon; check the "
                            "coupon columns")
    # every respondent must reach a root (no cycles)
    reached = np.zeros(parent.size, dtype=bool)
    children = _children(parent)
    stack = list(np.flatnonzero(parent < 0))
    while stack:
        node = stack.pop()
        reached[node] = True
        stack.extend(children[node])
    if not reached.all():
        row = int(np.flatnonzero(~reached)[0]) + 1
        raise DataError(f"{locate(source, row, coupon)}the coupons form a loop (a respondent recruits, through "
                        "others, their own recruiter); check the coupon columns")
    return parent


def _children(parent: np.ndarray) -> list[list[int]]:
    children: list[list[int]] = [[] for _ in range(parent.size)]
    for node, up in enumerate(parent.tolist()):
        if up >= 0:
            children[up].append(node)
    return children


def read_game_of_contacts(frame: pd.DataFrame, *, aware: str, alters: str, degree: str | None = None,
                          weights: str | None = None, coupon: str | None = None, issued: Sequence[str] = (),
                          source: str = "game of contacts") -> GameOfContacts:
    """Validate a game-of-contacts table: counts are whole numbers >= 0, aware <= alters on every row."""
    if not alters or not aware:
        raise ConfigError("name the aware-alters and total-alters columns (--aware COL --alters COL)")
    a = _numbers(frame, aware, source, "count of aware alters", whole=True)
    t = _numbers(frame, alters, source, "count of alters", whole=True)
    over = a > t
    if over.any():
        row = int(np.flatnonzero(over)[0]) + 1
        raise DataError(f"{locate(source, row, aware)}more aware alters than alters (column {alters!r}); the aware "
                        "alters are a subset of the alters")
    d = None if degree is None else _numbers(frame, degree, source, "network size", whole=False)
    w = None
    if weights is not None:
        w = _numbers(frame, weights, source, "weight", whole=False)
        if not (w > 0).any():
            raise DataError(f"{locate(source, column=weights)}every weight is 0; weights must be > 0")
    if bool(coupon) != bool(issued):
        raise ConfigError("the recruitment trees need both --coupon (each respondent's own coupon) and --issued "
                          "(the columns of the coupons they handed on)")
    parent = recruitment_forest(frame, coupon, issued, source) if coupon else None
    if frame.shape[0] == 0:
        raise DataError(f"{locate(source)}the file has no respondents")
    return GameOfContacts(aware=a, alters=t, degree=d, weights=w, parent=parent, source=source,
                          degree_column=degree or "")


# ------------------------------------------------------------------------------------------------ resampling
def tree_bootstrap_counts(parent: np.ndarray, replicates: int, rng: np.random.Generator) -> np.ndarray:
    """Respondent multiplicities of ``replicates`` tree-bootstrap samples (Baraff, McCormick & Raftery 2016).

    Each replicate draws as many roots as there are trees, with replacement; then, for every drawn node, as many of
    its recruits as it had, with replacement, down the tree (one wave at a time). Returns a (replicates, n) array.
    """
    n = parent.size
    order = np.argsort(parent, kind="stable")
    order = order[parent[order] >= 0]  # recruits, grouped by recruiter
    count = np.bincount(parent[parent >= 0], minlength=n)
    start = np.concatenate([[0], np.cumsum(count)[:-1]])
    roots = np.flatnonzero(parent < 0)
    out = np.zeros((replicates, n))
    for r in range(replicates):
        frontier = roots[rng.integers(0, roots.size, size=roots.size)]
        while frontier.size:
            out[r] += np.bincount(frontier, minlength=n)
            kids = count[frontier]
            slots = np.repeat(frontier, kids)
            if not slots.size:
                break
            frontier = order[start[slots] + rng.integers(0, count[slots])]
    return out


def _respondent_counts(n: int, replicates: int, rng: np.random.Generator) -> np.ndarray:
    return rng.multinomial(n, np.full(n, 1.0 / n), size=replicates).astype(float)


# ------------------------------------------------------------------------------------------------ estimation
def _weights(data: GameOfContacts, weighting: str) -> np.ndarray:
    if weighting == "column":
        if data.weights is None:
            raise ConfigError("weighting 'column' needs --weights COL")
        return data.weights
    if weighting == "rds-ii":
        if data.degree is None:
            raise ConfigError("RDS-II weights 1/degree need the network-size column (--degree COL), or choose "
                              "--weighting equal / --weighting column")
        zero = data.degree <= 0
        if zero.any():
            row = int(np.flatnonzero(zero)[0]) + 1
            raise DataError(f"{locate(data.source, row, data.degree_column)}the network size is 0; RDS-II weights "
                            "1/degree need a network size > 0 (recode it, or weight by a column with --weights)")
        return 1.0 / data.degree
    return np.ones(data.n)


def game_of_contacts(data: GameOfContacts, *, weighting: str = "rds-ii", resample: str = "tree",
                     replicates: int = 1000, seed: int = 1, level: float = 0.95,
                     frame_degree: float | None = None, frame_degree_se: float = 0.0,
                     name: str = "game_of_contacts") -> Estimates:
    """Transmission rate tau, hidden members' mean degree and (given the frame's mean degree) the degree ratio
    delta from a game-of-contacts survey, with bootstrap standard errors and percentile intervals.

    The result's ``diagnostics["declared"]`` holds the implied :class:`Declared` factors (as text) and
    ``diagnostics["declaration"]`` the ``[visibility.NAME]`` tables; ``extras["declared"]`` the objects.
    """
    if weighting not in WEIGHTINGS:
        raise ConfigError(f"weighting must be one of {', '.join(WEIGHTINGS)}")
    if resample not in RESAMPLING:
        raise ConfigError(f"resample must be one of {', '.join(RESAMPLING)}")
    if resample == "tree" and data.parent is None:
        raise ConfigError("the tree bootstrap needs the recruitment coupons (--coupon COL --issued COL ...); for a "
                          "sample of independent respondents use --resample respondent")
    if replicates < 2:
        raise ConfigError("the intervals need at least 2 bootstrap replicates (1000 is usual)")
    if frame_degree is not None and not (frame_degree > 0 and math.isfinite(frame_degree)):
        raise ConfigError("--frame-degree must be a positive number")
    if frame_degree_se < 0:
        raise ConfigError("--frame-degree-se must be >= 0")
    if frame_degree is not None and data.degree is None:
        raise ConfigError("--frame-degree gives the degree ratio only with the respondents' network sizes; add "
                          "--degree COL")
    if data.weights is not None and weighting != "column":
        raise ConfigError("a weight column is given but the weighting is not 'column'; add --weighting column (or "
                          "drop --weights)")
    w = _weights(data, weighting)
    denominator = float(np.sum(w * data.alters))
    if denominator <= 0:
        raise DataError(f"{locate(data.source)}no respondent with a positive weight reports any alter; tau is "
                        "undefined")
    tau = float(np.sum(w * data.aware)) / denominator
    rng = np.random.default_rng([0x676F63, int(seed)])
    counts = (tree_bootstrap_counts(data.parent, replicates, rng) if resample == "tree"
              else _respondent_counts(data.n, replicates, rng))
    cw = counts * w
    with np.errstate(invalid="ignore", divide="ignore"):
        tau_draws = (cw @ data.aware) / (cw @ data.alters)
    tau_draws = tau_draws[np.isfinite(tau_draws)]
    tail = (1 - level) / 2
    rows: list[dict[str, Any]] = []
    declared: list[Declared] = []
    texts: list[str] = []
    resampling = ("recruitment-tree bootstrap" if resample == "tree" else "respondent bootstrap")
    method = f"game of contacts ({weighting} weights, {resampling})"
    source = f"game of contacts, {data.source}: {weighting} ratio, {resampling}, {replicates} replicates"
    tau_se = float(np.std(tau_draws, ddof=1))
    low, high = np.quantile(tau_draws, [tail, 1 - tail])
    warnings = []
    try:
        beta = beta_from_moments(tau, tau_se)
    except ModelError as error:
        beta = None
        warnings.append(f"no Beta declaration for the transmission rate: {error}")
    rows.append({"quantity": "transmission_rate", "method": method, "estimate": tau, "se": tau_se,
                 "lower": float(low), "upper": float(high), "level": level, "interval": "bootstrap percentile",
                 "distribution": "" if beta is None else beta.text})
    if beta is not None:
        declared.append(Declared("transmission_rate", beta, None, source, f"{name}_tau"))
        texts.append(declaration(f"{name}_tau", "transmission_rate", beta, source))
    diagnostics: dict[str, Any] = {
        "respondents": data.n, "replicates": replicates, "usable_replicates": int(tau_draws.size),
        "alters": int(data.alters.sum()), "aware_alters": int(data.aware.sum()),
        "respondents_without_alters": int((data.alters == 0).sum()),
    }
    if data.parent is not None:
        diagnostics["trees"] = int((data.parent < 0).sum())
    if data.degree is not None:
        sw = cw.sum(axis=1)
        mean_degree = float(np.sum(w * data.degree) / np.sum(w))
        degree_draws = (cw @ data.degree) / sw
        low, high = np.quantile(degree_draws, [tail, 1 - tail])
        rows.append({"quantity": "hidden_mean_degree", "method": method, "estimate": mean_degree,
                     "se": float(np.std(degree_draws, ddof=1)), "lower": float(low), "upper": float(high),
                     "level": level, "interval": "bootstrap percentile", "distribution": ""})
        if frame_degree is not None:
            delta = mean_degree / frame_degree
            frame_sdlog = frame_degree_se / frame_degree
            frame_draws = frame_degree * np.exp(frame_sdlog * rng.standard_normal(degree_draws.size))
            delta_draws = degree_draws / frame_draws
            sdlog = float(np.std(np.log(delta_draws), ddof=1))
            try:
                lognormal = lognormal_from_log_moments(delta, sdlog)
            except ModelError as error:
                lognormal = None
                warnings.append(f"no lognormal declaration for the degree ratio: {error}")
            low, high = np.quantile(delta_draws, [tail, 1 - tail])
            rows.append({"quantity": "degree_ratio", "method": method, "estimate": delta,
                         "se": float(np.std(delta_draws, ddof=1)), "lower": float(low), "upper": float(high),
                         "level": level, "interval": "bootstrap percentile",
                         "distribution": "" if lognormal is None else lognormal.text})
            delta_source = f"{source}; frame mean degree {frame_degree:g} (se {frame_degree_se:g})"
            if lognormal is not None:
                declared.append(Declared("degree_ratio", lognormal, None, delta_source, f"{name}_delta"))
                texts.append(declaration(f"{name}_delta", "degree_ratio", lognormal, delta_source))
            diagnostics["frame_mean_degree"] = frame_degree
            diagnostics["frame_mean_degree_se"] = frame_degree_se
    diagnostics["declared"] = [{"name": d.name, "factor": d.factor, "distribution": d.distribution.text,
                                "mean": d.distribution.mean, "source": d.source} for d in declared]
    diagnostics["declaration"] = "\n".join(texts)
    if data.degree is not None and frame_degree is None:
        warnings.append("no --frame-degree given: the degree ratio needs the general survey's mean degree, "
                        "measured with the same question")
    return Estimates.from_rows(
        rows, seed=int(seed), warnings=warnings, diagnostics=diagnostics,
        settings={"weighting": weighting, "resample": resample, "replicates": replicates, "seed": int(seed),
                  "level": level, "frame_degree": frame_degree, "frame_degree_se": frame_degree_se},
        extras={"declared": declared})


def game_of_contacts_file(path: str | Path, options: GameOfContactsOptions, *,
                          name: str = "game_of_contacts") -> Estimates:
    """Read a game-of-contacts file and estimate tau (and delta) with ``options`` (one spec for the command line
    and the study file)."""
    path = Path(path)
    data = read_game_of_contacts(read_table(path), aware=options.aware, alters=options.alters,
                                 degree=options.degree, weights=options.weights, coupon=options.coupon,
                                 issued=options.issued, source=path.name)
    return game_of_contacts(data, weighting=options.weighting, resample=options.resample,
                            replicates=options.bootstrap, seed=options.seed, level=options.level,
                            frame_degree=options.frame_degree, frame_degree_se=options.frame_degree_se, name=name)


def degree_ratio_from_known(ard: ARD, reference: Sequence[str], *, level: float = 0.95,
                            name: str = "known_group_delta") -> Estimates:
    """The hidden group's degree ratio predicted from named reference known groups of an ARD survey.

    For each reference group k, r_k = (sum_i w_i y_ik / N_k) / (sum_i w_i sum_K y_iK / sum_K N_K): its members'
    reporting rate over that of all known groups, which estimates delta_k / delta_K (delta_K: the degree ratio of
    the known groups together, the base the known-population degree measures). The prediction for an exchangeable
    new group is LogNormal(exp(mean log r_k), sd log r_k * sqrt(1 + 1/K) * t_{K-1} / z) (see the module docstring).
    """
    reference = list(dict.fromkeys(reference))
    if len(reference) < 3:
        raise ConfigError("the degree ratio from known groups needs at least 3 reference known groups "
                          "(--reference a --reference b --reference c): their spread is its uncertainty")
    for group in reference:
        if group not in ard.known_sizes.index:
            raise ConfigError(f"reference group {group!r} is not a known group; known groups are {ard.known}")
    if len(ard.known) <= len(reference):
        raise ConfigError("the known groups besides the reference groups make up the degree's base; keep at least "
                          "one known group out of --reference")
    w = ard.design_weights
    sizes = ard.known_sizes.to_numpy(dtype=float)
    overall = float(np.sum(w * ard.counts[ard.known].to_numpy(dtype=float).sum(axis=1))) / float(sizes.sum())
    if overall <= 0:
        raise ModelError("nobody reports knowing anyone in the known groups; the degree ratio is undefined")
    ratios = np.array([float(np.sum(w * ard.y(g))) / float(ard.known_sizes[g]) / overall for g in reference])
    if not (ratios > 0).all():
        bad = [g for g, r in zip(reference, ratios, strict=True) if not r > 0]
        raise ModelError(f"nobody reports knowing anyone in reference group(s) {bad}; choose other reference "
                         "groups")
    logs = np.log(ratios)
    k = logs.size
    centre = float(logs.mean())
    spread = float(logs.std(ddof=1))
    z = distributions.two_sided_z(level)
    t = distributions.t_quantile((1 + level) / 2, k - 1)
    sdlog = spread * math.sqrt(1 + 1 / k) * t / z
    lognormal = lognormal_from_log_moments(math.exp(centre), sdlog)
    low, high = lognormal.quantiles([(1 - level) / 2, (1 + level) / 2])
    source = (f"known-group calibration: {k} reference groups ({', '.join(reference)}), predictive lognormal "
              "of their reporting rates relative to all known groups")
    decl = Declared("degree_ratio", lognormal, None, source, name)
    groups = pd.DataFrame({"quantity": reference, "method": "reporting rate relative to all known groups",
                           "estimate": ratios, "known_size": [float(ard.known_sizes[g]) for g in reference],
                           "log_ratio": logs})
    row = {"quantity": "degree_ratio", "method": "known-group calibration (predictive)",
           "estimate": lognormal.median, "se": np.nan, "lower": float(low), "upper": float(high), "level": level,
           "interval": f"predictive, t with {k - 1} df", "distribution": lognormal.text}
    diagnostics = {"reference_groups": reference, "mean_log_ratio": centre, "sd_log_ratio": spread,
                   "declared": [{"name": name, "factor": "degree_ratio", "distribution": lognormal.text,
                                 "mean": lognormal.mean, "source": source}],
                   "declaration": declaration(name, "degree_ratio", lognormal, source)}
    return Estimates.from_rows([row], diagnostics=diagnostics, tables={"reference_groups": groups},
                               settings={"reference": reference, "level": level, "weighted": ard.weighted},
                               warnings=list(ard.warnings), notes=list(ard.notes), extras={"declared": [decl]})
