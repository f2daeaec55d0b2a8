"""The analyses of report logs: reading and cleaning, rolling-window estimates, capture-history counts.

See :mod:`hiddenpop.capture.analyses`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date
from pathlib import Path
from typing import Any

from hiddenpop.capture.events.cleaning import CleaningRules, parse_exclusions
from hiddenpop.capture.events.occasions import (
    pattern_table,
    robust_history_counts,
    robust_history_table,
    robust_plan,
)
from hiddenpop.capture.events.reader import read_events
from hiddenpop.capture.events.rolling import rolling_series, window_counts
from hiddenpop.capture.specs import EventsSpec, HistoriesSpec, LogOptions
from hiddenpop.errors import ConfigError
from hiddenpop.provenance import provenance
from hiddenpop.results import Estimates
from hiddenpop.specs import to_dict

__all__ = ["cleaning_rules", "events_analysis", "histories_analysis", "read_log"]


def _day(value: str | None, key: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ConfigError(f"{key} {value!r}: use a date such as 2017-01-01") from None


def cleaning_rules(spec: LogOptions) -> Any:
    """The cleaning rules a spec's reading options describe."""
    return CleaningRules(country_column=spec.country_column, country=spec.country,
                         exclude=parse_exclusions(list(spec.exclude)), start=_day(spec.start, "start"),
                         end=_day(spec.end, "end"), dedupe=spec.dedupe, exclude_ipv6=spec.exclude_ipv6,
                         timezone=spec.timezone, input_timezone=spec.input_timezone, identifier_kind=spec.id_kind)


def read_log(paths: Sequence[str | Path], spec: LogOptions, *, identifier: str, time: str, key: Any,
             threads: int | None = None, memory_limit: str | None = None,
             temp_directory: str | None = None) -> Any:
    """A report log read, pseudonymised (``key``) and cleaned with the spec's reading options, its audit kept."""
    return read_events(paths, identifier=identifier, time=time, key=key, rules=cleaning_rules(spec),
                       threads=threads, memory_limit=memory_limit, temp_directory=temp_directory)


def _log_settings(log: Any, spec: LogOptions) -> dict[str, Any]:
    """The spec's values as settings, with the excluded values replaced by their labels (``column=value #1``
    and a keyed hash): a value given to --exclude may itself be an identifier and is never written."""
    return {**to_dict(spec), "exclude": log.rules.exclusion_labels()}


def _log_provenance(log: Any, settings: dict[str, Any]) -> dict[str, Any]:
    return provenance(inputs=log.inputs, rules=log.rules.to_dict(), key_fingerprint=log.key_fingerprint,
                      engine=log.engine, **settings)


def events_analysis(log: Any, spec: EventsSpec, *, iterate: Callable | None = None) -> Estimates:
    """One closed-population estimate per rolling window of ``log``: ``tables["series"]`` (the series),
    ``tables["audit"]`` (the cleaning audit), the key's warnings among the warnings."""
    plan, counts = window_counts(log, occasion=spec.occasion, occasions=spec.occasions, step=spec.step,
                                 estimator=spec.estimator)
    result = rolling_series(counts, plan, log.origin, estimator=spec.estimator, base=spec.base, level=spec.level,
                            interval=spec.interval, bootstrap=spec.bootstrap, seed=spec.seed, audit=log.audit,
                            iterate=iterate, workers=log.engine.get("threads"))
    result.settings = {**_log_settings(log, spec), **result.settings}
    result.diagnostics["windows"] = plan.to_dict()
    result.provenance = _log_provenance(log, result.settings)
    result.notes.extend(log.notes)
    result.warnings.extend(w for w in log.key_warnings if w not in result.warnings)
    return result


def histories_analysis(log: Any, spec: HistoriesSpec) -> Estimates:
    """Capture-history counts per window of ``log`` (``tables["histories"]``: window_start, window_end, history,
    count, zero cells included) with the cleaning audit; no estimate is made (``capture open`` makes one).

    With ``spec.periods`` (robust design) each window is ``periods`` primary periods of ``spec.occasions``
    occasions, and the table lists the histories seen with one 0/1 column per occasion (``p2_3``: period 2,
    occasion 3) and their count, for ``capture robust``."""
    if spec.periods is not None:
        plan = robust_plan(log.first_day, log.last_day, occasion=spec.occasion, occasions=spec.occasions,
                           periods=spec.periods, step=spec.step)
        table = robust_history_table(robust_history_counts(log.iter_pairs(), plan), plan, spec.periods, log.origin)
        windows = {**plan.to_dict(), "primary_periods": spec.periods, "secondary_occasions": spec.occasions}
    else:
        plan, counts = window_counts(log, occasion=spec.occasion, occasions=spec.occasions, step=spec.step)
        table = pattern_table(counts, plan, log.origin)
        windows = plan.to_dict()
    result = Estimates.tables_only({"histories": table, "audit": log.audit},
                                   settings=_log_settings(log, spec), diagnostics={"windows": windows},
                                   warnings=list(log.key_warnings), notes=list(log.notes))
    result.provenance = _log_provenance(log, result.settings)
    return result
