"""The study file (``study.toml``): what a study is, checked once, before anything runs.

A study file names the data, the population bases, the known and hidden groups and how hidden groups combine
(victims = live + non-live), the design columns, the analyses to run with their settings, the seed and the privacy
settings. :func:`load_study` parses it with :mod:`tomllib` and validates it completely: every problem is a
:class:`~hiddenpop.errors.ConfigError` whose message names the file, the table and key, what is wrong and the fix
(with a "did you mean" for misspelt keys). Nothing is read from the data files here except their existence; the
runner validates their contents through each family's own readers.

The full reference is ``docs/study-file.md``.
"""

from __future__ import annotations

import copy
import difflib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hiddenpop.capture.specs import EventsSpec, MSESpec
from hiddenpop.cases.specs import CasesSpec
from hiddenpop.compare.specs import CompareSpec
from hiddenpop.data.io import read_toml
from hiddenpop.errors import ConfigError
from hiddenpop.nsum.adjust import (
    DISTRIBUTION_HELP,
    FACTORS,
    Adjustments,
    Declared,
    Fixed,
    check_factor,
    parse_distribution,
)
from hiddenpop.nsum.bayes.analyses import check_spec as check_bayes_spec
from hiddenpop.nsum.specs import BayesSpec, GameOfContactsOptions, NsumSpec, SurveyOptions
from hiddenpop.smallarea.specs import SmallAreaSpec
from hiddenpop.specs import MAX_SEED, fields_of, from_table

# --------------------------------------------------------------------------------------------- key specifications
# Each table maps key -> (accepted python types, required?, short description used in error messages).
_STR = (str,)
_INT = (int,)
_NUM = (int, float)
_BOOL = (bool,)
_LIST = (list,)
_TABLE = (dict,)

STUDY_KEYS: dict[str, tuple[tuple[type, ...], bool, str]] = {
    "name": (_STR, True, "a short title"),
    "description": (_STR, False, "one paragraph shown in the report"),
    "reference_year": (_INT, False, "the year the estimates refer to"),
    "seed": (_INT, True, "the random seed for every analysis"),
    "level": (_NUM, False, "interval level, e.g. 0.95"),
}
PRIVACY_KEYS = {
    "suppression_threshold": (_INT, False, "counts below this (and above zero) are hidden in published tables"),
    "key_file": (_STR, False, "file holding the pseudonymisation key for identifiers"),
}
#: [survey]: the file and area column, then the reading options every survey interface shares (SurveyOptions).
SURVEY_INPUT_KEYS = {
    "file": (_STR, True, "the survey file (CSV, Parquet, Excel, SPSS or Stata)"),
    "area": (_STR, False, "area (municipality) column"),
}
KNOWN_SIZES_KEYS = {
    "file": (_STR, True, "table of known group sizes with columns group,size"),
}
DEGREE_KEYS = {
    "method": (_STR, True, "'known_population' or 'summation'"),
    "groups": (_LIST, True, "the known-group columns the degree is built from"),
    "base": (_STR, True, "population base (a key of [populations]) the degree scales to"),
}
HIDDEN_KEYS = {
    "column": (_STR, False, "survey column (defaults to the group name)"),
    "degree": (_STR, True, "which [degrees.*] entry scales this group up"),
    "label": (_STR, False, "plain-language name for the report"),
}
COMBINE_KEYS = {
    "groups": (_LIST, True, "hidden groups summed into this quantity"),
    "base": (_STR, True, "population base for prevalence (a key of [populations])"),
    "per": (_INT, False, "prevalence is reported per this many people of the base"),
    "label": (_STR, False, "plain-language name for the report"),
    "headline": (_STR, True, "analysis whose estimate is the headline ('nsum' or 'nsum_bayes')"),
    "why": (_STR, False, "one sentence on why that analysis is the headline (shown in the report)"),
}
VISIBILITY_KEYS = {
    "factor": (_STR, True, f"which factor: {', '.join(FACTORS)}"),
    "distribution": ((str, int, float), False, DISTRIBUTION_HELP),
    "groups": (_LIST, False, "hidden groups or combinations it applies to, sharing each draw (default: every "
                             "hidden group)"),
    "source": (_STR, True, "where the value comes from (shown beside the headline)"),
    "casework": (_STR, False, "instead of 'distribution': calibrate a transmission rate against the 'victims' or "
                              "'suspects' count of [analyses.casework]"),
    "base_column": (_STR, False, "with 'casework': the casework file's column holding each area's population base"),
    "completeness": (_NUM, False, "with 'casework': the share of the true members casework found, in (0, 1] "
                                  "(default 1)"),
    "game_of_contacts": (_STR, False, "instead of 'distribution': a game-of-contacts survey of the hidden "
                                      "population, estimated when the run starts (its columns and options are "
                                      "those of `hiddenpop nsum visibility`)"),
}
#: The factors a game-of-contacts survey estimates.
GAME_OF_CONTACTS_FACTORS = ("transmission_rate", "degree_ratio")
RATIO_KEYS = {
    "numerator": (_STR, True, "a combination or hidden group"),
    "denominator": (_STR, True, "a combination or hidden group"),
    "label": (_STR, False, "plain-language name for the report"),
}
ANALYSIS_KEYS: dict[str, dict[str, tuple[tuple[type, ...], bool, str]]] = {
    "nsum": {
        "enabled": (_BOOL, False, "run this analysis (default true)"),
    },
    "nsum_bayes": {
        "enabled": (_BOOL, False, "run this analysis (default true)"),
        "degree": (_STR, True, "which [degrees.*] entry's known groups the model uses"),
        "hidden": (_LIST, True, "hidden groups fitted by the model"),
    },
    "casework": {
        "enabled": (_BOOL, False, "run this analysis (default true)"),
        "file": (_STR, True, "casework counts per area"),
        "area": (_STR, False, "area column"),
        "victims": (_STR, True, "column: victims brought to safety"),
        "suspects": (_STR, True, "column: suspects arrested"),
        "ratio": (_STR, False, "the [ratios.NAME] the casework victims-per-suspect ratio is shown against"),
    },
    "report_log": {
        "enabled": (_BOOL, False, "run this analysis (default true)"),
        "files": (_LIST, True, "report-log files (CSV or Parquet)"),
        "id": (_STR, True, "identifier column (pseudonymised at read time)"),
        "time": (_STR, True, "timestamp column"),
    },
    "smallarea": {
        "enabled": (_BOOL, False, "run this analysis (default true)"),
        "file": (_STR, True, "one row per area with covariates"),
        "id": (_STR, True, "area id column (matches the survey's area column)"),
        "name": (_STR, False, "area name column (shown on the map and in tables)"),
        "geometry": (_STR, False, "area boundaries: a GeoJSON FeatureCollection of Polygon/MultiPolygon features "
                                  "(also gives the pooled model its neighbours)"),
        "geometry_key": (_STR, False, "the GeoJSON feature property holding the area id (default: the id column)"),
        "population": (_STR, False, "area population column (the target's base)"),
        "region": (_STR, False, "parent region column (groups areas in cross-validation)"),
        "streams": (_TABLE, False, "data stream name = [covariate columns]"),
        "target": (_STR, False, "combination mapped by area (default: the first combination)"),
    },
    "cases": {
        "enabled": (_BOOL, False, "run this analysis (default true)"),
        "file": (_STR, True, "coded case files"),
        "codebook": (_STR, True, "the case-file codebook"),
    },
    "mse": {
        "enabled": (_BOOL, False, "run this analysis (default true)"),
        "file": (_STR, True, "overlapping lists: one 0/1 column per list (plus a count column if aggregated, and "
                             "the stratum column if any)"),
        "quantity": (_STR, False, "the combination the lists count (their estimates join its triangulation)"),
    },
    "compare": {
        "enabled": (_BOOL, False, "run this analysis (default true)"),
        "file": (_STR, True, "referral counts by agency and receiving country, or one row per report and country"),
        "base_file": (_STR, False, "table country,base (population, children or internet users) for rates"),
    },
}
#: The analyses whose options are a spec (hiddenpop.specs): the table holds the keys above (what the analysis
#: reads) plus the spec's options, checked by the spec itself. ``seed`` is set once, in [study].
ANALYSIS_SPECS: dict[str, type] = {"nsum": NsumSpec, "nsum_bayes": BayesSpec, "smallarea": SmallAreaSpec,
                                   "report_log": EventsSpec, "cases": CasesSpec, "mse": MSESpec,
                                   "compare": CompareSpec}
#: Options a study sets once for every analysis, and where.
STUDY_WIDE = {"seed": "[study] seed", "threshold": "[privacy] suppression_threshold",
              **{factor: f"[visibility.NAME] with factor = {factor!r}" for factor in FACTORS},
              "tau_prior": "[visibility.NAME] with factor = 'transmission_rate' and distribution = 'beta(a, b)'"}
#: Keys of an analysis table that name one input file (checked to exist and hashed in the manifest).
FILE_KEYS = ("file", "codebook", "geometry", "base_file")
#: Analyses whose interval level defaults to [study] level (area estimates keep their own 90% default).
LEVEL_FROM_STUDY = ("nsum", "nsum_bayes", "report_log", "cases", "mse", "compare")


def analysis_keys(name: str) -> list[str]:
    """Every key the table [analyses.NAME] accepts: its inputs, then its spec's options."""
    spec = ANALYSIS_SPECS.get(name)
    options = [] if spec is None else [i.name for i in fields_of(spec) if i.name not in STUDY_WIDE]
    return [*ANALYSIS_KEYS[name], *options]


def survey_keys() -> list[str]:
    return [*SURVEY_INPUT_KEYS, *(info.name for info in fields_of(SurveyOptions))]


TOP_LEVEL = {
    "study": (_TABLE, True, "title, seed, interval level"),
    "privacy": (_TABLE, False, "suppression threshold and key file"),
    "populations": (_TABLE, True, "population bases: name = size"),
    "survey": (_TABLE, True, "the survey file and its design columns"),
    "known_sizes": (_TABLE, True, "the known group sizes file"),
    "degrees": (_TABLE, True, "how network sizes are built: [degrees.NAME]"),
    "hidden": (_TABLE, True, "hidden groups: [hidden.NAME]"),
    "combine": (_TABLE, False, "sums of hidden groups: [combine.NAME]"),
    "ratios": (_TABLE, False, "ratios between quantities: [ratios.NAME]"),
    "visibility": (_TABLE, False, "the visibility model, one factor per table: [visibility.NAME]"),
    "analyses": (_TABLE, True, "analyses to run: [analyses.NAME]"),
}

#: Memory the study may ask for in bootstrap replicates or posterior draws (checked once the survey is read).
MAX_REPLICATE_BYTES = 4 * 2**30

DEGREE_METHODS = ("known_population", "summation")
HEADLINE_ANALYSES = ("nsum", "nsum_bayes")
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


# --------------------------------------------------------------------------------------------- the parsed study
@dataclass(frozen=True)
class Degree:
    name: str
    method: str
    groups: tuple[str, ...]
    base: str


@dataclass(frozen=True)
class HiddenGroup:
    name: str
    column: str
    degree: str
    label: str


@dataclass(frozen=True)
class Combination:
    name: str
    groups: tuple[str, ...]
    base: str
    per: int
    label: str
    headline: str
    why: str = ""


@dataclass(frozen=True)
class Calibration:
    """A transmission rate calibrated against casework counts at run time
    (:func:`hiddenpop.nsum.bayes.calibration.tau_prior_from_counts`)."""

    name: str
    groups: tuple[str, ...]
    role: str  # "victims" or "suspects": which [analyses.casework] count
    base_column: str
    completeness: float
    source: str


@dataclass(frozen=True)
class GameOfContactsSource:
    """A visibility factor estimated from a game-of-contacts survey when the run starts
    (:func:`hiddenpop.nsum.visibility.game_of_contacts_file`)."""

    name: str
    factor: str
    groups: tuple[str, ...] | None
    file: Path
    options: GameOfContactsOptions
    source: str


@dataclass(frozen=True)
class Ratio:
    name: str
    numerator: str
    denominator: str
    label: str
    #: the analysis whose joint draws give the ratio: the one both sides' headlines come from
    headline: str = "nsum"


@dataclass
class Study:
    """A validated study. Paths are absolute (resolved against the study file's folder)."""

    path: Path
    name: str
    description: str
    reference_year: int | None
    seed: int
    level: float
    suppression_threshold: int
    key_file: Path | None
    populations: dict[str, int]
    survey: dict[str, Any]
    known_sizes_file: Path
    degrees: dict[str, Degree]
    hidden: dict[str, HiddenGroup]
    combine: dict[str, Combination]
    ratios: dict[str, Ratio]
    analyses: dict[str, dict[str, Any]]
    raw: dict[str, Any] = field(repr=False)
    #: The validated spec of each spec-driven analysis (seed from [study]) and of [survey]'s reading options.
    specs: dict[str, Any] = field(default_factory=dict, repr=False)
    #: The visibility model: each [visibility.NAME] as a declaration over hidden-group names.
    visibility: tuple[Declared, ...] = ()
    #: The [visibility.NAME] tables calibrated against casework when the run starts.
    calibrations: tuple[Calibration, ...] = ()
    #: The [visibility.NAME] tables estimated from a game-of-contacts survey when the run starts.
    visibility_sources: tuple[GameOfContactsSource, ...] = ()

    def adjustments(self) -> Adjustments:
        """The visibility model over the survey's hidden-group columns, as the estimators take it."""
        return Adjustments(declared=[
            Declared(d.factor, d.distribution, None if d.groups is None else
                     tuple(self.hidden[g].column for g in d.groups), d.source, d.name) for d in self.visibility])

    @property
    def folder(self) -> Path:
        return self.path.parent

    def enabled(self, analysis: str) -> bool:
        settings = self.analyses.get(analysis)
        return settings is not None and settings.get("enabled", True)

    def input_files(self) -> list[Path]:
        """Every file the study reads, study file first (hashed into the manifest)."""
        files = [self.path, Path(self.survey["file"]), self.known_sizes_file]
        files.extend(source.file for source in self.visibility_sources)
        if self.key_file is not None:
            files.append(self.key_file)
        for name, settings in self.analyses.items():
            if not self.enabled(name):
                continue
            for key in FILE_KEYS:
                if key in settings:
                    files.append(Path(settings[key]))
            files.extend(Path(f) for f in settings.get("files", []))
        return list(dict.fromkeys(files))

    def settings(self) -> dict[str, Any]:
        """The study file's settings as written (file paths stay relative to the study folder), except the values
        of report-log exclusions, recorded as ``column = "value #1"``: such a value may itself be an identifier."""
        settings = copy.deepcopy(self.raw)
        log = settings.get("analyses", {}).get("report_log", {})
        if isinstance(log, dict) and "exclude" in log:
            items = log["exclude"].items() if isinstance(log["exclude"], dict) else (
                str(item).partition("=")[::2] for item in log["exclude"])
            log["exclude"] = [f"{column}=value #{i}" for i, (column, _) in enumerate(items, start=1)]
        return settings


# --------------------------------------------------------------------------------------------- validation helpers
class _Checker:
    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, where: str, message: str) -> ConfigError:
        return ConfigError(f"{self.path.name}, {where}: {message}")

    def table(
        self, value: Any, where: str, spec: dict[str, tuple[tuple[type, ...], bool, str]],
        options: type | None = None,
    ) -> dict[str, Any]:
        """Check the table's own keys against ``spec``; keys of the ``options`` spec are left to :meth:`options`."""
        if not isinstance(value, dict):
            raise self.fail(where, f"expected a table ([{where.strip('[]')}]), got {_kind(value)}")
        allowed = [*spec, *([] if options is None else [i.name for i in fields_of(options)
                                                       if i.name not in STUDY_WIDE])]
        for key in value:
            if key in STUDY_WIDE and options is not None and key in {i.name for i in fields_of(options)}:
                raise self.fail(where, f"key {key!r} is set once for the whole study, in {STUDY_WIDE[key]}; remove "
                                "it here")
            if key not in allowed:
                raise self.fail(where, f"unknown key {key!r}{_did_you_mean(key, allowed)}; allowed keys: "
                                f"{', '.join(allowed)}")
        for key, (types, required, what) in spec.items():
            if key not in value:
                if required:
                    raise self.fail(where, f"missing required key {key!r} ({what})")
                continue
            item = value[key]
            ok = isinstance(item, types) and not (isinstance(item, bool) and bool not in types)
            if not ok:
                expected = " or ".join(_TYPE_NAMES[t] for t in types)
                raise self.fail(f"{where} key {key!r}", f"expected {expected} ({what}), got {_kind(item)}")
        return value

    def options(self, spec_cls: type, table: dict[str, Any], where: str, **study_wide: Any) -> Any:
        """The analysis's spec from the table's option keys (``study_wide`` values such as the seed fill in)."""
        names = {info.name for info in fields_of(spec_cls)}
        given = {k: v for k, v in table.items() if k in names}
        defaults = {k: v for k, v in study_wide.items() if k in names}
        return from_table(spec_cls, {**defaults, **given}, where=f"{self.path.name}, {where}: ")

    def names(self, items: Any, where: str, what: str) -> tuple[str, ...]:
        if not items or not all(isinstance(i, str) for i in items):
            raise self.fail(where, f"expected a non-empty list of {what} (strings)")
        duplicates = sorted({i for i in items if items.count(i) > 1})
        if duplicates:
            raise self.fail(where, f"{what} listed twice: {', '.join(duplicates)}")
        return tuple(items)

    def choice(self, value: str, allowed: tuple[str, ...], where: str) -> str:
        if value not in allowed:
            raise self.fail(where, f"{value!r} is not one of {', '.join(allowed)}{_did_you_mean(value, allowed)}")
        return value

    def reference(self, value: str, declared: dict[str, Any] | tuple[str, ...], where: str, what: str) -> str:
        if value not in declared:
            names = ", ".join(declared) or "(none declared)"
            raise self.fail(where, f"{what} {value!r} is not declared{_did_you_mean(value, declared)}; "
                            f"declared: {names}")
        return value

    def file(self, value: str, where: str) -> Path:
        resolved = (self.path.parent / value).resolve()
        if not resolved.is_file():
            raise self.fail(where, f"file not found: {value} (looked in {resolved.parent}); fix the path, which "
                            "is relative to the study file's folder")
        return resolved


_TYPE_NAMES = {str: "a string", int: "an integer", float: "a number", bool: "true/false", list: "a list",
               dict: "a table"}


def _kind(value: Any) -> str:
    for python_type, name in ((bool, "true/false"), (str, "a string"), (int, "an integer"), (float, "a number"),
                              (list, "a list"), (dict, "a table")):
        if isinstance(value, python_type):
            return name
    return type(value).__name__


def _did_you_mean(value: str, options: Any) -> str:
    close = difflib.get_close_matches(value, list(options), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


# --------------------------------------------------------------------------------------------- loading
def load_study(path: str | Path) -> Study:
    """Parse and validate ``study.toml``; raises :class:`ConfigError` with file, table, key and fix."""

    path = Path(path).resolve()
    return parse_study(read_toml(path, what="study file"), path)


def parse_study(raw: dict[str, Any], path: Path) -> Study:
    """Validate an already-parsed study dictionary (``path`` anchors relative file names and messages)."""
    check = _Checker(path)
    check.table(raw, "top level", TOP_LEVEL)

    study = check.table(raw["study"], "[study]", STUDY_KEYS)
    level = float(study.get("level", 0.95))
    if not 0.5 <= level < 1:
        raise check.fail("[study] key 'level'", f"{level} is outside [0.5, 1); use e.g. 0.95")
    if not 0 <= study["seed"] <= MAX_SEED:
        raise check.fail("[study] key 'seed'", f"must be a whole number from 0 to {MAX_SEED:,}")

    privacy = check.table(raw.get("privacy", {}), "[privacy]", PRIVACY_KEYS)
    threshold = privacy.get("suppression_threshold", 5)
    if threshold < 1:
        raise check.fail("[privacy] key 'suppression_threshold'", "must be at least 1 (5 is usual)")
    key_file = check.file(privacy["key_file"], "[privacy] key 'key_file'") if "key_file" in privacy else None

    populations = raw["populations"]
    if not isinstance(populations, dict) or not populations:
        raise check.fail("[populations]", "expected a table of name = size (e.g. total = 113771856)")
    for name, size in populations.items():
        if not isinstance(size, int) or isinstance(size, bool) or size <= 0:
            raise check.fail(f"[populations] key {name!r}", f"expected a positive integer, got {_kind(size)}")
    if "total" not in populations:
        raise check.fail("[populations]", "missing required key 'total' (the whole population)")
    for name, size in populations.items():
        if size > populations["total"]:
            raise check.fail(f"[populations] key {name!r}", "is larger than 'total'; check the numbers")

    survey = dict(check.table(raw["survey"], "[survey]", SURVEY_INPUT_KEYS, options=SurveyOptions))
    survey["file"] = check.file(survey["file"], "[survey] key 'file'")
    survey_options = check.options(SurveyOptions, {k: v for k, v in survey.items() if k not in SURVEY_INPUT_KEYS},
                                   "[survey]")

    known = check.table(raw["known_sizes"], "[known_sizes]", KNOWN_SIZES_KEYS)
    known_file = check.file(known["file"], "[known_sizes] key 'file'")

    degrees: dict[str, Degree] = {}
    for name, entry in _subtables(check, raw["degrees"], "degrees").items():
        where = f"[degrees.{name}]"
        check.table(entry, where, DEGREE_KEYS)
        degrees[name] = Degree(
            name=name,
            method=check.choice(entry["method"], DEGREE_METHODS, f"{where} key 'method'"),
            groups=check.names(entry["groups"], f"{where} key 'groups'", "known groups"),
            base=check.reference(entry["base"], populations, f"{where} key 'base'", "population base"),
        )

    hidden: dict[str, HiddenGroup] = {}
    for name, entry in _subtables(check, raw["hidden"], "hidden").items():
        where = f"[hidden.{name}]"
        check.table(entry, where, HIDDEN_KEYS)
        hidden[name] = HiddenGroup(
            name=name,
            column=entry.get("column", name),
            degree=check.reference(entry["degree"], degrees, f"{where} key 'degree'", "degree"),
            label=entry.get("label", name.replace("_", " ")),
        )
    _check_columns_distinct(check, degrees, hidden)

    combine: dict[str, Combination] = {}
    for name, entry in _subtables(check, raw.get("combine", {}), "combine", allow_empty=True).items():
        where = f"[combine.{name}]"
        check.table(entry, where, COMBINE_KEYS)
        if name in hidden:
            raise check.fail(where, f"{name!r} is already a hidden group; give the combination its own name")
        groups = check.names(entry["groups"], f"{where} key 'groups'", "hidden groups")
        for group in groups:
            check.reference(group, hidden, f"{where} key 'groups'", "hidden group")
        bases = {degrees[hidden[g].degree].base for g in groups}
        if len(bases) > 1:
            raise check.fail(f"{where} key 'groups'", "mixes hidden groups scaled to different population bases "
                             f"({', '.join(sorted(bases))}); combine only groups that share a degree base")
        per = entry.get("per", 1000)
        if per < 1:
            raise check.fail(f"{where} key 'per'", "must be a positive integer, e.g. 100 or 1000")
        headline = entry["headline"]
        check.choice(headline, HEADLINE_ANALYSES, f"{where} key 'headline'")
        combine[name] = Combination(
            name=name,
            groups=groups,
            base=check.reference(entry["base"], populations, f"{where} key 'base'", "population base"),
            per=per,
            label=entry.get("label", name.replace("_", " ")),
            headline=headline,
            why=entry.get("why", ""),
        )

    ratios: dict[str, Ratio] = {}
    quantities = {**hidden, **combine}
    for name, entry in _subtables(check, raw.get("ratios", {}), "ratios", allow_empty=True).items():
        where = f"[ratios.{name}]"
        check.table(entry, where, RATIO_KEYS)
        if name in quantities:
            raise check.fail(where, f"{name!r} is already a hidden group or combination; rename the ratio")
        numerator = check.reference(entry["numerator"], quantities, f"{where} key 'numerator'", "quantity")
        denominator = check.reference(entry["denominator"], quantities, f"{where} key 'denominator'", "quantity")
        if numerator == denominator:
            raise check.fail(where, "numerator and denominator are the same quantity")
        sides = {side: combine[side].headline for side in (numerator, denominator) if side in combine}
        if len(set(sides.values())) > 1:
            raise check.fail(where, "its numerator and denominator have headlines from different analyses ("
                             + ", ".join(f"{k}: {v}" for k, v in sides.items()) + "); a ratio is computed draw by "
                             "draw from one analysis, so give both [combine] tables the same 'headline'")
        ratios[name] = Ratio(name, numerator, denominator, entry.get("label", name.replace("_", " ")),
                             headline=next(iter(sides.values()), "nsum"))

    visibility, calibrations, sources = _check_visibility(check, raw.get("visibility", {}), hidden, combine,
                                                          seed=study["seed"], level=level)

    specs: dict[str, Any] = {"survey": survey_options}
    analyses = _check_analyses(check, raw["analyses"], degrees, hidden, combine, ratios, key_file, survey, specs,
                               seed=study["seed"], level=level, threshold=threshold)
    for calibration in calibrations:
        casework = analyses.get("casework")
        if casework is None or not casework.get("enabled", True) or "area" not in casework:
            raise check.fail(f"[visibility.{calibration.name}] key 'casework'", "needs [analyses.casework] with its "
                             "'area' column, to match casework areas with the survey's")
        if "area" not in survey:
            raise check.fail(f"[visibility.{calibration.name}] key 'casework'", "needs the survey's area column: "
                             "set [survey] key 'area'")
    for combination in combine.values():
        if combination.headline not in analyses:
            raise check.fail(f"[combine.{combination.name}] key 'headline'",
                             f"analysis {combination.headline!r} is not in [analyses]; add "
                             f"[analyses.{combination.headline}] or choose another headline")

    return Study(
        path=path,
        name=study["name"],
        description=study.get("description", ""),
        reference_year=study.get("reference_year"),
        seed=study["seed"],
        level=level,
        suppression_threshold=threshold,
        key_file=key_file,
        populations=dict(populations),
        survey=survey,
        known_sizes_file=known_file,
        degrees=degrees,
        hidden=hidden,
        combine=combine,
        ratios=ratios,
        analyses=analyses,
        raw=raw,
        specs=specs,
        visibility=visibility,
        calibrations=calibrations,
        visibility_sources=sources,
    )


def _check_visibility(check: _Checker, value: Any, hidden: dict[str, HiddenGroup],
                      combine: dict[str, Combination], *, seed: int, level: float,
                      ) -> tuple[tuple[Declared, ...], tuple[Calibration, ...], tuple[GameOfContactsSource, ...]]:
    """Each [visibility.NAME] as one declared factor over hidden-group names (combinations expanded), as a
    casework calibration done when the run starts, or as a factor estimated from a game-of-contacts survey then."""
    declared, calibrations, sources, placeholders = [], [], [], []
    goc_keys = {info.name for info in fields_of(GameOfContactsOptions)}
    for name, entry in _subtables(check, value, "visibility", allow_empty=True).items():
        where = f"[visibility.{name}]"
        check.table(entry, where, VISIBILITY_KEYS, options=GameOfContactsOptions)
        factor = check.choice(entry["factor"], tuple(FACTORS), f"{where} key 'factor'")
        groups = None
        if "groups" in entry:
            names = check.names(entry["groups"], f"{where} key 'groups'", "hidden groups or combinations")
            groups = []
            for item in names:
                check.reference(item, {**hidden, **combine}, f"{where} key 'groups'", "hidden group or combination")
                groups.extend(combine[item].groups if item in combine else [item])
            groups = tuple(dict.fromkeys(groups))
        given = [key for key in ("distribution", "casework", "game_of_contacts") if key in entry]
        if len(given) != 1:
            raise check.fail(where, "give exactly one of 'distribution', 'casework' (a rate calibrated against "
                             "casework) or 'game_of_contacts' (a survey of the hidden population)")
        if "game_of_contacts" not in entry:
            extra = sorted(goc_keys & set(entry))
            if extra:
                raise check.fail(f"{where} key {extra[0]!r}", "belongs to a game-of-contacts source; remove it or "
                                 f"replace '{given[0]}' by 'game_of_contacts'")
        else:
            sources.append(_check_game_of_contacts(check, where, name, entry, factor, groups, seed, level))
            placeholders.append(Declared(factor, Fixed(0.5), groups, entry["source"], name))
            continue
        if "casework" in entry:
            calibrations.append(_check_calibration(check, where, name, entry, factor, groups, hidden))
            placeholders.append(Declared(factor, Fixed(0.5), groups, entry["source"], name))
            continue
        for key in ("base_column", "completeness"):
            if key in entry:
                raise check.fail(f"{where} key {key!r}", "belongs to a casework calibration; remove it or replace "
                                 "'distribution' by 'casework'")
        try:
            distribution = check_factor(factor, parse_distribution(entry["distribution"]))
        except ConfigError as error:
            raise check.fail(f"{where} key 'distribution'", str(error)) from None
        declared.append(Declared(factor, distribution, groups, entry["source"], name))
    try:
        Adjustments(declared=declared + placeholders)
    except ConfigError as error:
        raise check.fail("[visibility]", str(error)) from None
    return tuple(declared), tuple(calibrations), tuple(sources)


def _check_game_of_contacts(check: _Checker, where: str, name: str, entry: dict[str, Any], factor: str,
                            groups: tuple[str, ...] | None, seed: int, level: float) -> GameOfContactsSource:
    if factor not in GAME_OF_CONTACTS_FACTORS:
        raise check.fail(f"{where} key 'factor'", "a game of contacts estimates the transmission_rate or the "
                         "degree_ratio")
    for key in ("base_column", "completeness"):
        if key in entry:
            raise check.fail(f"{where} key {key!r}", "belongs to a casework calibration; remove it")
    path = check.file(entry["game_of_contacts"], f"{where} key 'game_of_contacts'")
    options = check.options(GameOfContactsOptions, entry, where, seed=seed, level=level)
    if factor == "degree_ratio" and (options.degree is None or options.frame_degree is None):
        raise check.fail(where, "a degree ratio from the game of contacts needs 'degree' (the respondents' network "
                         "size column) and 'frame_degree' (the general survey's mean degree)")
    return GameOfContactsSource(name, factor, groups, path, options, entry["source"])


def _check_calibration(check: _Checker, where: str, name: str, entry: dict[str, Any], factor: str,
                       groups: tuple[str, ...] | None, hidden: dict[str, HiddenGroup]) -> Calibration:
    if factor != "transmission_rate":
        raise check.fail(f"{where} key 'casework'", "casework calibrates a transmission rate; set factor = "
                         "'transmission_rate'")
    role = check.choice(entry["casework"], ("victims", "suspects"), f"{where} key 'casework'")
    if groups is None:
        raise check.fail(where, "a casework calibration needs 'groups': the hidden groups its count refers to")
    if len({hidden[g].degree for g in groups}) > 1:
        raise check.fail(f"{where} key 'groups'", "the groups are scaled by different degrees; calibrate groups "
                         "that share one degree")
    if "base_column" not in entry:
        raise check.fail(where, "a casework calibration needs 'base_column': the casework file's column of each "
                         "area's population base (e.g. children)")
    completeness = entry.get("completeness", 1.0)
    if not 0 < completeness <= 1:
        raise check.fail(f"{where} key 'completeness'", "must lie in (0, 1]: the share of true members casework "
                         "found")
    return Calibration(name, groups, role, entry["base_column"], float(completeness), entry["source"])


def _subtables(check: _Checker, value: Any, section: str, allow_empty: bool = False) -> dict[str, dict]:
    if not isinstance(value, dict):
        raise check.fail(f"[{section}]", f"expected tables [{section}.NAME], got {_kind(value)}")
    if not value and not allow_empty:
        raise check.fail(f"[{section}]", f"declare at least one [{section}.NAME] table")
    for name, entry in value.items():
        if not _NAME.match(name):
            raise check.fail(f"[{section}.{name}]", "names use letters, digits and underscores, starting with a "
                             "letter")
        if not isinstance(entry, dict):
            raise check.fail(f"[{section}] key {name!r}", f"expected a table [{section}.{name}], got {_kind(entry)}")
    return value


def _check_columns_distinct(check: _Checker, degrees: dict[str, Degree], hidden: dict[str, HiddenGroup]) -> None:
    known_columns = {g for d in degrees.values() for g in d.groups}
    for group in hidden.values():
        if group.column in known_columns:
            raise check.fail(f"[hidden.{group.name}]", f"column {group.column!r} is also a known group in "
                             "[degrees]; a column is either known or hidden")


def _check_analyses(
    check: _Checker,
    value: Any,
    degrees: dict[str, Degree],
    hidden: dict[str, HiddenGroup],
    combine: dict[str, Combination],
    ratios: dict[str, Ratio],
    key_file: Path | None,
    survey_columns: dict[str, Any],
    specs: dict[str, Any],
    *,
    seed: int,
    level: float,
    threshold: int,
) -> dict[str, dict[str, Any]]:
    analyses: dict[str, dict[str, Any]] = {}
    if not isinstance(value, dict) or not value:
        raise check.fail("[analyses]", "declare at least one analysis, e.g. [analyses.nsum]")
    for name, entry in value.items():
        if name not in ANALYSIS_KEYS:
            raise check.fail(f"[analyses.{name}]", f"unknown analysis{_did_you_mean(name, ANALYSIS_KEYS)}; "
                             f"known analyses: {', '.join(ANALYSIS_KEYS)}")
        where = f"[analyses.{name}]"
        spec_cls = ANALYSIS_SPECS.get(name)
        settings = dict(check.table(entry, where, ANALYSIS_KEYS[name], options=spec_cls))
        if name == "report_log" and isinstance(settings.get("exclude"), dict):  # exclude = { column = "value" }
            settings["exclude"] = [f"{column}={value}" for column, value in settings["exclude"].items()]
        if spec_cls is not None:
            study_wide = {"seed": seed, "threshold": threshold,
                          **({"level": level} if name in LEVEL_FROM_STUDY else {})}
            specs[name] = check.options(spec_cls, settings, where, **study_wide)
        enabled = settings.get("enabled", True)
        for key in FILE_KEYS:
            if key in settings and enabled:
                settings[key] = check.file(settings[key], f"{where} key {key!r}")
        if "files" in settings and enabled:
            settings["files"] = [check.file(f, f"{where} key 'files'") for f in settings["files"]]
        if name == "nsum" and len(specs[name].method) != 1:
            raise check.fail(f"{where} key 'method'", "a study's headline needs one estimator; name one (e.g. "
                             "\"mle\") and compare others with `hiddenpop nsum estimate --method`")
        if name == "nsum_bayes":
            try:
                check_bayes_spec(specs[name])
            except ConfigError as error:
                raise check.fail(where, str(error)) from None
            check.reference(settings["degree"], degrees, f"{where} key 'degree'", "degree")
            for group in check.names(settings["hidden"], f"{where} key 'hidden'", "hidden groups"):
                check.reference(group, hidden, f"{where} key 'hidden'", "hidden group")
                if hidden[group].degree != settings["degree"]:
                    raise check.fail(f"{where} key 'hidden'", f"hidden group {group!r} is scaled by degree "
                                     f"{hidden[group].degree!r}, not {settings['degree']!r}")
        if name == "report_log" and enabled and key_file is None:
            raise check.fail(where, "reading identifiers needs a pseudonymisation key: set [privacy] key_file "
                             "(create one with `hiddenpop privacy keygen`)")
        if name == "mse" and "quantity" in settings:
            check.reference(settings["quantity"], combine, f"{where} key 'quantity'", "combination")
        if name == "casework" and "ratio" in settings:
            check.reference(settings["ratio"], ratios, f"{where} key 'ratio'", "ratio")
        if name == "smallarea":
            if enabled and "area" not in survey_columns:
                raise check.fail(where, "area estimates need the survey's area column: set [survey] key 'area'")
            if "target" in settings:
                check.reference(settings["target"], combine, f"{where} key 'target'", "combination")
            for stream, columns in settings.get("streams", {}).items():
                check.names(columns, f"{where} key 'streams.{stream}'", "covariate columns")
        analyses[name] = settings
    return analyses
