"""The analyses package: every name resolves to its module's function, and each module loads only the models of
its kind of input (a closed fit never imports the list, report-log or sampler code)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

#: The public names of the analyses and the module each is defined in.
MODULES = {
    "read_histories": "closed", "closed_analysis": "closed", "interval_analysis": "closed",
    "single_analysis": "closed", "fits_latent": "lists", "mse_analysis": "lists", "coverage_analysis": "lists",
    "cleaning_rules": "logs", "read_log": "logs", "events_analysis": "logs", "histories_analysis": "logs",
    "open_analysis": "histories", "robust_analysis": "histories",
}


def test_every_name_is_its_modules_function():
    from importlib import import_module

    from hiddenpop.capture import analyses

    assert sorted(analyses.__all__) == sorted(MODULES)
    for name, module in MODULES.items():
        assert getattr(analyses, name) is getattr(import_module(f"hiddenpop.capture.analyses.{module}"), name)


def test_lazy_exports_of_the_sampler_and_the_list_classes_are_the_functions():
    from hiddenpop import mcmc
    from hiddenpop.capture import lists
    from hiddenpop.capture.lists.compare import compare_classes
    from hiddenpop.capture.lists.strata import stratified
    from hiddenpop.mcmc.nuts import enable_compilation_cache, host_devices

    assert lists.compare_classes is compare_classes and lists.stratified is stratified
    assert mcmc.host_devices is host_devices and mcmc.enable_compilation_cache is enable_compilation_cache


@pytest.mark.parametrize(("module", "unwanted"), [
    ("closed", ("hiddenpop.capture.analyses.lists", "hiddenpop.capture.lists.models", "hiddenpop.mcmc.nuts",
                "hiddenpop.capture.events.reader", "hiddenpop.capture.events.open")),
    ("lists", ("hiddenpop.capture.lists.compare", "hiddenpop.capture.lists.latent", "hiddenpop.capture.lists.strata",
               "hiddenpop.mcmc.nuts", "hiddenpop.capture.events.reader")),
    ("histories", ("hiddenpop.capture.lists.models", "hiddenpop.mcmc.nuts", "hiddenpop.capture.events.reader",
                   "hiddenpop.capture.events.robust", "hiddenpop.capture.closed.models")),
])
def test_each_module_loads_only_its_kind_of_input(module, unwanted):
    code = (f"import json, sys, hiddenpop.capture.analyses.{module}\n"
            "print(json.dumps(sorted(sys.modules)))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = set(json.loads(done.stdout))
    assert f"hiddenpop.capture.analyses.{module}" in loaded
    assert sorted(loaded & set(unwanted)) == []
