"""The options of the cross-country comparison, declared once as a spec (see :mod:`hiddenpop.specs`).

``hiddenpop compare referrals`` and the study file's ``[analyses.compare]`` table are built from it;
:func:`hiddenpop.compare.analyses.compare_files` runs it. Nothing heavy loads here.
"""

from __future__ import annotations

from dataclasses import dataclass

from hiddenpop.compare.regions import check_country_code
from hiddenpop.privacy import DEFAULT_SUPPRESSION_THRESHOLD
from hiddenpop.specs import opt, seed_option

__all__ = ["CompareSpec"]


@dataclass(frozen=True, kw_only=True)
class CompareSpec:
    """Options of the comparison of referral counts between receiving countries."""

    country: str = opt("country", "column of the receiving country (ISO 3166-1 alpha-3 or alpha-2 code)")
    count: str = opt("count", "column of the number of referrals in each row (rows of agency, country, period)")
    id: str | None = opt(None, "column of a report or case id: one row per report and receiving country (a report "
                               "sent to several countries has several rows); the count column is then not read")
    agency: str | None = opt(None, "column of the source agency (gives results by agency and leave-one-agency-out)")
    agencies: tuple[str, ...] = opt((), "agency names that may be published, in the order to show them; without "
                                        "them agencies are shown as agency 1, 2, ... in alphabetical order")
    period: str | None = opt(None, "column of the period (counts are added over periods; agency, country and "
                                   "period identify a row)")
    focus: str | None = opt(None, "ISO code of the country compared with every other (default: the largest "
                                  "observed)", parse=check_country_code)
    base_label: str = opt("population", "what the base table counts, for the unit (e.g. children, internet users)")
    per: int = opt(100_000, "rates per this many of the base", min=1)
    level: float = opt(0.95, "confidence level of the intervals and of the rank intervals", min=0, max=1,
                       inclusive=False)
    draws: int = opt(10_000, "draws of the ranking simulation", min=100, max=1_000_000)
    prior_shape: float = opt(0.5, "shape of the Gamma prior of each rate in the ranking simulation (0.5: Jeffreys, "
                                  "1: flat)", min=0, max=100, inclusive=False)
    threshold: int = opt(DEFAULT_SUPPRESSION_THRESHOLD, "suppress counts from 1 to threshold - 1 (privacy)", min=1)
    seed: int = seed_option()
