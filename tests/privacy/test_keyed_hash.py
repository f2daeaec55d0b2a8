"""One keyed-hash path: every pseudonym in the package comes from ``hiddenpop.privacy``; keys are never echoed."""

from __future__ import annotations

import hashlib
import hmac
import re
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hiddenpop.errors import PrivacyError
from hiddenpop.privacy import KEY_ENV, load_key

SRC = Path(__file__).resolve().parents[2] / "src" / "hiddenpop"
#: Files allowed to use hashlib/hmac directly, and why.
ALLOWED = {
    "privacy/keys.py": "the keyed-hash path itself",
    "data/io.py": "SHA-256 of whole input files for provenance (no identifiers)",
    "study/demo.py": "derives the synthetic demo's key from its seed (demo data only)",
}
KEY = "0123456789abcdef0123456789abcdef"


def test_no_other_module_hashes_identifiers():
    offenders = []
    for path in SRC.rglob("*.py"):
        rel = path.relative_to(SRC).as_posix()
        if rel in ALLOWED:
            continue
        text = path.read_text(encoding="utf-8")
        if re.search(r"^\s*(import|from)\s+(hashlib|hmac)\b", text, re.M) or "blake2" in text or "md5(" in text:
            offenders.append(rel)
    assert offenders == [], f"route identifier hashing through hiddenpop.privacy: {offenders}"


@settings(max_examples=60, deadline=None)
@given(st.text(min_size=1, max_size=40))
def test_fast_hasher_equals_hmac(text):
    from hiddenpop.privacy import Pseudonymiser

    key = Pseudonymiser(KEY.encode())
    assert key.hasher()(text) == key.hash_one(text)


@settings(max_examples=60, deadline=None)
@given(st.text(min_size=1, max_size=40), st.binary(min_size=16, max_size=100))
def test_digester_is_the_standard_library_hmac(text, secret):
    from hiddenpop.privacy import Pseudonymiser

    # reference: the standard library's HMAC (keys over 64 bytes are hashed first, as RFC 2104 says)
    assert Pseudonymiser(secret).digester()(text) == hmac.new(secret, text.encode("utf-8"), hashlib.sha256).digest()


def test_duckdb_udf_uses_the_same_pseudonyms():
    pa = pytest.importorskip("pyarrow")
    from hiddenpop.capture.events.reader import pseudonym_udf
    from hiddenpop.privacy import Pseudonymiser

    key = Pseudonymiser(KEY.encode())
    values = ["203.0.113.7", "2001:db8::1", "ünïcødé", None]
    out = pseudonym_udf(key)(pa.array(values, type=pa.string())).to_pylist()
    assert out == [key.hash_one(v) if v is not None else None for v in values]


def test_key_from_file_and_env_agree(tmp_path, monkeypatch):
    path = tmp_path / "k.txt"
    path.write_text(KEY + "\n")
    monkeypatch.setenv(KEY_ENV, KEY)
    assert load_key(path).hash_one("x") == load_key().hash_one("x")
    assert KEY not in repr(load_key()) and KEY not in str(load_key())


def test_refuses_without_key_and_short_key_messages_hold_no_key(tmp_path, monkeypatch):
    monkeypatch.delenv(KEY_ENV, raising=False)
    with pytest.raises(PrivacyError, match="refusing to read identifiers"):
        load_key()
    monkeypatch.setenv(KEY_ENV, "short-secret")
    with pytest.raises(PrivacyError) as info:
        load_key()
    assert "short-secret" not in str(info.value)


def test_review_sample_takes_key_from_environment(tmp_path, monkeypatch, capsys):
    """Raw identifiers with HIDDENPOP_KEY set (no --key-file) are pseudonymised, as the option help promises."""
    from hiddenpop.cli import main

    units = tmp_path / "units.csv"
    pd.DataFrame({"ip": [f"203.0.113.{i}" for i in range(1, 41)]}).to_csv(units, index=False)
    monkeypatch.setenv(KEY_ENV, KEY)
    with pytest.raises(SystemExit) as info:
        main(["review", "sample", str(units), "--unit", "ip", "--n", "5", "--format", "csv"])
    out = capsys.readouterr()
    assert info.value.code == 0, out.err
    assert "203.0.113." not in out.out + out.err


def test_empty_key_file_is_an_error_naming_the_file(tmp_path, monkeypatch):
    monkeypatch.delenv(KEY_ENV, raising=False)
    path = tmp_path / "empty.key"
    path.write_text("\n")
    with pytest.raises(PrivacyError, match=f"key file {re.escape(str(path))} is empty"):
        load_key(path)


def test_short_or_readable_keys_are_warned_about_without_the_key(tmp_path):
    path = tmp_path / "k.key"
    short = "0123456789abcdefghij"  # 20 bytes: accepted (>= 16), below the recommended 32
    path.write_text(short + "\n")
    path.chmod(0o644)
    key = load_key(path)
    assert len(key.warnings) == 2
    assert "short (20 bytes)" in key.warnings[0] and "can be read by other users (mode 0644)" in key.warnings[1]
    assert all(short not in w for w in key.warnings)
    path.write_text(KEY + "\n")
    path.chmod(0o600)
    assert load_key(path).warnings == ()


def test_fingerprint_is_the_public_record_of_a_key():
    from hiddenpop.privacy import Pseudonymiser

    key = Pseudonymiser(KEY.encode())
    assert re.fullmatch(r"[0-9a-f]{12}", key.fingerprint) and KEY not in key.fingerprint
    assert key.fingerprint == Pseudonymiser(KEY.encode(), ("a warning",)).fingerprint
