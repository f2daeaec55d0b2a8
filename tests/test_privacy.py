import hashlib
import hmac

import pandas as pd
import pytest

from hiddenpop.errors import PrivacyError
from hiddenpop.privacy import generate_key, load_key, suppress_small_cells


def test_keyed_hash_matches_hmac_sha256(tmp_path, monkeypatch):
    key_file = tmp_path / "k"
    key_file.write_text("0123456789abcdef0123456789abcdef\n")
    key = load_key(key_file)
    expected = hmac.new(b"0123456789abcdef0123456789abcdef", b"203.0.113.7", hashlib.sha256).hexdigest()[:32]
    assert key.hash_one("203.0.113.7") == expected
    assert key.hash_many(["203.0.113.7", None, "  "]) == [expected, None, None]
    assert "0123456789abcdef" not in repr(key)


def test_key_required_and_never_echoed(tmp_path, monkeypatch):
    monkeypatch.delenv("HIDDENPOP_KEY", raising=False)
    with pytest.raises(PrivacyError, match="no pseudonymisation key"):
        load_key()
    monkeypatch.setenv("HIDDENPOP_KEY", "short-secret")
    with pytest.raises(PrivacyError) as info:
        load_key()
    assert "short-secret" not in str(info.value)


def test_different_keys_give_different_pseudonyms(monkeypatch):
    monkeypatch.setenv("HIDDENPOP_KEY", generate_key())
    a = load_key().hash_one("x")
    monkeypatch.setenv("HIDDENPOP_KEY", generate_key())
    assert load_key().hash_one("x") != a


def test_suppression_blanks_small_cells_and_dependents():
    table = pd.DataFrame({"group": ["a", "b", "c"], "count": [0, 3, 12], "share": [0.0, 0.2, 0.8]})
    published, n = suppress_small_cells(table, ["count"], threshold=5, dependent_columns={"count": ["share"]})
    assert n == 1
    assert published["count"].isna().tolist() == [False, True, False]
    assert published["share"].isna().tolist() == [False, True, False]
    assert published["suppressed"].tolist() == [False, True, False]
