"""A study file's [visibility.NAME] estimated from a game-of-contacts survey when the run starts: the same numbers as
``hiddenpop nsum visibility``, its options checked when the study loads."""

from __future__ import annotations

import shutil

import pytest

from hiddenpop import datasets
from hiddenpop.errors import ConfigError
from hiddenpop.nsum.adjust import Beta, LogNormal
from hiddenpop.nsum.specs import GameOfContactsOptions
from hiddenpop.nsum.visibility import game_of_contacts_file
from hiddenpop.study import steps
from hiddenpop.study.schema import load_study

GOC = ['game_of_contacts = "data/goc.csv"', 'aware = "total.aware"', 'alters = "total.alters"',
       'degree = "netsize.1.bss"', 'coupon = "in.coupon"', 'issued = ["out.coupon1", "out.coupon2", "out.coupon3"]',
       "bootstrap = 200"]


def _study(demo_study, tmp_path, tables: str):
    folder = tmp_path / "study"
    shutil.copytree(demo_study.parent, folder)
    shutil.copy(datasets.path("networkreporting_scratch_goc_survey"), folder / "data" / "goc.csv")
    path = folder / "study.toml"
    text = path.read_text()
    start, end = text.index("[visibility.transmission]"), text.index("[analyses.nsum]")
    path.write_text(text[:start] + tables + "\n\n" + text[end:])
    return path


def test_game_of_contacts_source_declares_the_commands_distributions(demo_study, tmp_path):
    from hiddenpop.study.runner import execute

    tables = "\n".join(["[visibility.tau]", 'factor = "transmission_rate"', 'source = "Curitiba game"', *GOC, "",
                        "[visibility.delta]", 'factor = "degree_ratio"', 'source = "Curitiba game"', *GOC,
                        "frame_degree = 250.0", "frame_degree_se = 10.0"])
    study = load_study(_study(demo_study, tmp_path, tables))
    assert [s.name for s in study.visibility_sources] == ["tau", "delta"] and study.visibility == ()
    assert study.visibility_sources[0].options.seed == study.seed
    assert study.visibility_sources[0].file in study.input_files()
    context, published, _ = execute(study, steps=[("nsum", steps.nsum_step)])
    model = {d.name: d for d in context.shared["visibility"].declared}
    options = GameOfContactsOptions(aware="total.aware", alters="total.alters", degree="netsize.1.bss",
                                    coupon="in.coupon", issued=("out.coupon1", "out.coupon2", "out.coupon3"),
                                    bootstrap=200, seed=study.seed, level=study.level, frame_degree=250.0,
                                    frame_degree_se=10.0)
    direct = {d.factor: d.distribution
              for d in game_of_contacts_file(study.folder / "data" / "goc.csv", options).extras["declared"]}
    assert isinstance(model["tau"].distribution, Beta) and model["tau"].distribution == direct["transmission_rate"]
    assert isinstance(model["delta"].distribution, LogNormal) and model["delta"].distribution == direct["degree_ratio"]
    sources = published.tables["assumptions"]["source"]
    assert sources.str.contains("Curitiba game \\(game of contacts, goc.csv").sum() == 2  # tau and delta rows


@pytest.mark.parametrize(("table", "message"), [
    (['factor = "frame_ratio"', *GOC], "estimates the transmission_rate or the degree_ratio"),
    (['factor = "degree_ratio"', *GOC], "needs 'degree' .* and 'frame_degree'"),
    (['factor = "transmission_rate"', 'distribution = "beta(2, 2)"', *GOC], "give exactly one of"),
    (['factor = "transmission_rate"', 'distribution = "beta(2, 2)"', 'aware = "total.aware"'],
     "key 'aware': belongs to a game-of-contacts source"),
    (['factor = "transmission_rate"', *GOC[:1], 'alters = "total.alters"'], "aware"),
    (['factor = "transmission_rate"', 'game_of_contacts = "data/nope.csv"', *GOC[1:]], "file not found"),
    (['factor = "transmission_rate"', *GOC, 'resample = "chains"'], "resample"),
    (['factor = "transmission_rate"', *GOC, "seed = 3"], "set once for the whole study"),
])
def test_game_of_contacts_settings_are_checked_when_the_study_loads(demo_study, tmp_path, table, message):
    path = _study(demo_study, tmp_path, "\n".join(["[visibility.tau]", 'source = "s"', *table]))
    with pytest.raises(ConfigError, match=message):
        load_study(path)
