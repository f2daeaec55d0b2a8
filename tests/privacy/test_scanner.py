"""Scanner test: run the demo study and every identifier-reading CLI command on data seeded with IP addresses,
e-mail addresses, phone numbers, free text and the key itself, then grep every output file, stdout and stderr.

Commands run in-process through ``hiddenpop.cli.root`` (same error handling as the console script, no interpreter
start-up per command); a positive control plants the seeded strings and checks the scanner finds them, so a
clean result means "nothing leaked", not "the scanner is blind".
"""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pandas as pd
import pytest

from hiddenpop.cli import main
from hiddenpop.privacy import KEY_ENV
from hiddenpop.privacy.scanner import PATTERNS, compile_patterns, scan_paths
from hiddenpop.study.demo import write_demo_study

IPS = ["203.0.113.77", "198.51.100.23", "192.0.2.201", "2001:db8:85a3::8a2e:370:7334"]
EMAILS = ["maria.santos@example.org", "j.delacruz+tips@example.net"]
PHONES = ["+63 917 555 0142", "(02) 8555 0199"]
FREE_TEXT = ["Neighbour said the uncle streams from the back room", "Informant asked not to be named: Lola Bening"]
KEY = "9f8e7d6c5b4a39281706f5e4d3c2b1a09f8e7d6c5b4a39281706f5e4d3c2b1a0"
POPULATION = "113771856"


def _invoke(args: list[str], log: Path) -> int:
    """Run one command in-process; append its stdout and stderr to ``log``; return the exit code."""
    out, err = io.StringIO(), io.StringIO()
    code = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main([str(a) for a in args])
        except SystemExit as exc:
            code = int(exc.code or 0)
    with log.open("a", encoding="utf-8") as stream:
        stream.write(f"$ {args[0]} {args[1] if len(args) > 1 else ''}\n{out.getvalue()}\n{err.getvalue()}\n")
    return code


def _seed_data(data: Path) -> list[str]:
    """Plant identifiers and free text in the demo's inputs; returns the survey's (e-mail) respondent ids."""
    log = pd.read_csv(data / "report_log.csv", dtype=str)
    with_ip = log.index[log["ip_address"].notna()]
    for i, ip in enumerate(IPS):
        log.loc[with_ip[i :: len(IPS)][:40], "ip_address"] = ip
    log["reporter_email"] = [EMAILS[i % len(EMAILS)] for i in range(len(log))]
    log["reporter_phone"] = [PHONES[i % len(PHONES)] for i in range(len(log))]
    log["analyst_note"] = [FREE_TEXT[i % len(FREE_TEXT)] for i in range(len(log))]
    log.to_csv(data / "report_log.csv", index=False)

    survey = pd.read_csv(data / "survey.csv")
    ids = [f"resp{i:05d}.{EMAILS[0]}" for i in range(len(survey))]
    survey["respondent_id"] = ids
    survey["interviewer_note"] = [FREE_TEXT[i % 2] for i in range(len(survey))]
    survey["phone"] = [PHONES[i % 2] for i in range(len(survey))]
    survey.to_csv(data / "survey.csv", index=False)

    cases = pd.read_csv(data / "cases.csv")
    cases["case_notes"] = [f"{FREE_TEXT[i % 2]} ({EMAILS[i % 2]}, {PHONES[i % 2]})" for i in range(len(cases))]
    cases.to_csv(data / "cases.csv", index=False)
    with (data / "codebook.csv").open("a", encoding="utf-8") as stream:
        stream.write("case_notes,case,free_text,analyst notes,,,\n")
    return ids


@pytest.fixture(scope="module")
def leak_run(tmp_path_factory):
    """Everything written by the demo run and by every command, plus the list of strings that must not appear."""
    root = tmp_path_factory.mktemp("scan")
    study = write_demo_study(root / "study", seed=11, profile="test")
    data = study.parent / "data"
    ids = _seed_data(data)
    key_file = study.parent / "keys" / "demo-key.txt"
    out = root / "outputs"
    out.mkdir()
    log = out / "console.log"
    secrets = [*IPS, *EMAILS, *PHONES, *FREE_TEXT, KEY, key_file.read_text().strip(), *ids[:50]]
    own_key = root / "own.key"
    own_key.write_text(KEY)
    known = data / "known_sizes.csv"
    survey = data / "survey.csv"
    groups = ["--hidden", "children_live", "--hidden", "adults_live"]
    codes = {}
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv(KEY_ENV, raising=False)
        codes["run"] = _invoke(["run", study, "--out", out / "run", "--quiet"], log)
        codes["nsum estimate"] = _invoke(
            ["nsum", "estimate", survey, "--known", known, "--population", POPULATION, *groups, "--id-column",
             "respondent_id", "--weights", "weight", "--strata", "stratum", "--psu", "psu", "--bootstrap", "100",
             "--format", "json", "--out", out / "nsum.json"], log)
        codes["nsum consistency"] = _invoke(
            ["nsum", "consistency", survey, "--known", known, "--population", POPULATION, *groups, "--id-column",
             "respondent_id", "--format", "json", "--out", out / "consistency.json"], log)
        report = data / "report_log.csv"
        events = ["--id", "ip_address", "--time", "reported_at", "--occasions", "4", "--occasion", "7D"]
        codes["capture events"] = _invoke(
            ["capture", "events", report, *events, "--step", "28D", "--key-file", own_key, "--quiet", "--format",
             "json", "--out-dir", out / "events"], log)
        codes["capture histories"] = _invoke(
            ["capture", "histories", report, *events, "--key-file", own_key, "--quiet", "--format", "csv",
             "--out-dir", out / "histories"], log)
        units = data / "review_units.csv"
        reports = pd.read_csv(report, dtype=str)
        reports[reports["ip_address"].notna()].to_csv(units, index=False)
        codes["review sample"] = _invoke(
            ["review", "sample", units, "--unit", "ip_address", "--n", "10", "--key-file", own_key, "--format",
             "csv", "--out", out / "review.csv"], log)
        codes["cases summarize"] = _invoke(
            ["cases", "summarize", data / "cases.csv", "--codebook", data / "codebook.csv", "--by", "trafficker_sex",
             "--format", "json", "--out", out / "cases.json"], log)
        # list/occasion commands on a capture table that carries a free-text column (ignored or refused)
        lists = data / "lists.csv"
        pd.DataFrame({"A": [1, 1, 0, 1, 0, 0, 1], "B": [0, 1, 1, 0, 1, 0, 1], "C": [1, 0, 1, 0, 0, 1, 1],
                      "count": [4, 2, 3, 9, 7, 8, 2],
                      "note": [EMAILS[0], PHONES[0], FREE_TEXT[0], IPS[0], "a", "b", "c"]}).to_csv(lists, index=False)
        extra = {"ci": ["--model", "M0"], "mse": ["--select", "aic"]}
        for verb in ("closed", "ci", "mse", "coverage"):
            codes[f"capture {verb}"] = _invoke(["capture", verb, lists, *extra.get(verb, []), "--format", "json",
                                                "--out", out / f"capture_{verb}.json"], log)
        # error paths must not echo the offending value
        bad = data / "bad_survey.csv"
        frame = pd.read_csv(survey)
        frame["doctors"] = frame["doctors"].astype(object)
        frame.loc[3, "doctors"] = EMAILS[0]
        frame.to_csv(bad, index=False)
        codes["nsum error"] = _invoke(
            ["nsum", "estimate", bad, "--known", known, "--population", POPULATION, *groups], log)
        codes["events without key"] = _invoke(["capture", "events", report, *events, "--out-dir", out / "nokey"], log)
        dup = data / "dup_ids.csv"
        frame = pd.read_csv(survey)
        frame.loc[5, "respondent_id"] = frame.loc[4, "respondent_id"]
        frame.to_csv(dup, index=False)
        codes["nsum duplicate id"] = _invoke(
            ["nsum", "estimate", dup, "--known", known, "--population", POPULATION, *groups, "--id-column",
             "respondent_id"], log)
    return out, secrets, codes, log


def test_commands_ran(leak_run):
    _, _, codes, log = leak_run
    text = log.read_text()
    ok = ["run", "nsum estimate", "nsum consistency", "capture events", "capture histories", "review sample",
          "cases summarize"]
    assert {k: codes[k] for k in ok} == dict.fromkeys(ok, 0), text[-3000:]
    assert codes["nsum error"] == 2 and codes["events without key"] == 2 and codes["nsum duplicate id"] == 2
    # capture commands may refuse the free-text column, but never with an internal error (exit 1)
    assert all(codes[f"capture {verb}"] in (0, 2) for verb in ("closed", "ci", "mse", "coverage"))
    assert "refusing to read identifiers" in text


def test_no_seeded_identifier_or_key_in_any_output(leak_run):
    out, secrets, _, _ = leak_run
    files = [p for p in out.rglob("*") if p.is_file()]
    assert len(files) >= 10
    hits = scan_paths(out, compile_patterns([], secrets), all_files=True)
    assert hits == [], hits[:10]


def test_no_identifier_like_strings_in_outputs(leak_run):
    out, _, _, _ = leak_run
    hits = scan_paths(out, compile_patterns(list(PATTERNS)))
    assert hits == [], hits[:10]


def test_scanner_positive_control(leak_run, tmp_path):
    """Planting every seeded string in an output makes the scan find each kind (the scan is not blind)."""
    _, secrets, _, _ = leak_run
    planted = tmp_path / "planted.csv"
    planted.write_text("x\n" + "\n".join(f"row {i},{s}" for i, s in enumerate(secrets[:10])) + "\n")
    kinds = {h["kind"] for h in scan_paths(tmp_path, compile_patterns(list(PATTERNS)))}
    assert kinds == {"ipv4", "ipv6", "email", "phone"}
    literal_hits = scan_paths(tmp_path, compile_patterns([], secrets[:10]))
    assert len({h["kind"] for h in literal_hits}) == 10
    # numbers typical of result tables are not mistaken for identifiers
    numbers = tmp_path / "numbers.csv"
    numbers.write_text("estimate,lower\n471416.25,1234.5678\n0.0123,2022-01-03\n113771856,5.485e6\n1.2.3\n")
    assert scan_paths(numbers, compile_patterns(list(PATTERNS))) == []


def test_scan_command_exit_codes_and_report_hides_matches(tmp_path, capsys):
    (tmp_path / "clean.csv").write_text("estimate\n12.5\n")
    with pytest.raises(SystemExit) as info:
        main(["privacy", "scan", str(tmp_path)])
    assert info.value.code in (0, None)
    (tmp_path / "leak.json").write_text('{"note": "contact ' + EMAILS[0] + '"}\n')
    with pytest.raises(SystemExit) as info:
        main(["privacy", "scan", str(tmp_path), "--literal", "contact"])
    captured = capsys.readouterr()
    assert info.value.code == 1
    assert "leak.json:1: email" in captured.out
    assert EMAILS[0] not in captured.out + captured.err and "contact" not in captured.out


def test_keygen_creates_private_file_and_never_overwrites(tmp_path, capsys):
    target = tmp_path / "k.key"
    with pytest.raises(SystemExit) as info:
        main(["privacy", "keygen", "--out", str(target)])
    assert info.value.code in (0, None)
    key = target.read_text().strip()
    assert re.fullmatch(r"[0-9a-f]{64}", key)
    assert target.stat().st_mode & 0o077 == 0
    captured = capsys.readouterr()
    assert key not in captured.out + captured.err
    with pytest.raises(SystemExit) as info:
        main(["privacy", "keygen", "--out", str(target)])
    assert info.value.code == 2 and target.read_text().strip() == key


def test_vendored_plotly_bundle_is_skipped_but_figure_data_is_scanned(tmp_path):
    page = tmp_path / "figure.html"
    page.write_text(
        "<html><script>/**\n* plotly.js v9.9.9\n* author <someone@example.com> 12.4.84.32\n*/</script>\n"
        '<script>Plotly.newPlot("x", [{"text": ["' + IPS[0] + '"]}])</script></html>\n'
    )
    hits = scan_paths(tmp_path, compile_patterns(list(PATTERNS)))
    assert hits == [{"file": "figure.html", "line": 5, "kind": "ipv4"}]
