"""One output contract: every spec-driven command's --format json validates against docs/estimates.schema.json,
and docs/cli.md shows each command's options exactly as its spec declares them."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import jsonschema
import pytest

from cli_commands import spec_commands
from hiddenpop.cli import main
from hiddenpop.results import Estimates
from hiddenpop.specs import options_markdown
from refdata import CAPTURE_DATA

DOCS = Path(__file__).resolve().parents[1] / "docs"
SCHEMA = json.loads((DOCS / "estimates.schema.json").read_text())
COMMANDS = spec_commands()

# A small real input per command; a new spec-driven command without an example fails test_every_command_has_one.
EXAMPLES = {
    "capture closed": [CAPTURE_DATA / "rcapture_hare.csv"],
    "capture ci": [CAPTURE_DATA / "rcapture_hare.csv", "--model", "Mth Chao (LB)"],
    "capture mse": [CAPTURE_DATA / "mse_Korea.csv", "--select", "stepwise"],
    "capture coverage": [CAPTURE_DATA / "care1_HAV.csv", "--bootstrap", "20"],
}


def _json_of(path: str, args: list) -> dict:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main([*path.split(), *map(str, args), "--format", "json"])
        except SystemExit as stop:
            assert stop.code in (0, None), err.getvalue()
    return json.loads(out.getvalue())


def test_the_schema_is_a_valid_schema_and_matches_estimates():
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    import pandas as pd

    empty = Estimates(pd.DataFrame({"quantity": ["x"], "method": ["m"], "estimate": [float("inf")]})).to_dict()
    assert set(empty) == set(SCHEMA["required"]) == set(SCHEMA["properties"])
    jsonschema.validate(empty, SCHEMA)


def test_every_command_has_an_example():
    assert {path for path, _, _ in COMMANDS} <= set(EXAMPLES)


@pytest.mark.parametrize("path", sorted(EXAMPLES))
def test_json_output_validates_against_the_schema(path):
    payload = _json_of(path, EXAMPLES[path])
    jsonschema.validate(payload, SCHEMA)
    assert payload["estimates"], f"{path} printed no estimates"


def test_a_broken_output_is_refused_by_the_schema():
    payload = _json_of("capture ci", EXAMPLES["capture ci"])
    del payload["estimates"][0]["lower"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(payload, SCHEMA)


@pytest.mark.parametrize(("path", "spec"), [(p, s) for p, _, s in COMMANDS], ids=[p for p, _, _ in COMMANDS])
def test_docs_show_each_commands_options_as_declared(path, spec):
    text = (DOCS / "cli.md").read_text()
    section = f"### `hiddenpop {path}`\n\n{options_markdown(spec)}"
    assert section in text, f"docs/cli.md: regenerate the options table of {path} from {spec.__name__}"
