"""Keyed pseudonymisation of identifiers.

Every reader of identifiers (IP addresses, account ids, names) calls :func:`pseudonymise` (or
    :meth:`Pseudonymiser.hash_many`) at ingestion. The pseudonym is HMAC-SHA256 of the identifier under a secret
    key, truncated to 16 bytes and hex encoded. Without the key a pseudonym cannot be reversed or recomputed from a
    guessed identifier (unlike a plain hash of an IPv4 address, which can be brute-forced in minutes).
    The key comes from a file (``--key-file``) or the ``HIDDENPOP_KEY`` environment variable. It is never logged,
    printed, written to a manifest or included in an error message; only a fingerprint (an HMAC of a fixed label)
    is recorded so two runs can be shown to have used the same key.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import os
import stat
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hiddenpop.errors import PrivacyError

KEY_ENV = "HIDDENPOP_KEY"
MIN_KEY_BYTES = 16
#: Keys shorter than this are accepted (existing studies keep their pseudonyms) but warned about: 32 random bytes
#: is what ``hiddenpop privacy keygen`` writes.
RECOMMENDED_KEY_BYTES = 32
PSEUDONYM_HEX_CHARS = 32


@dataclass(frozen=True, repr=False)
class Pseudonymiser:
    """Holds a secret key and turns identifiers into keyed pseudonyms.

    The key is deliberately excluded from ``repr`` so it cannot leak through logging or tracebacks.
    ``warnings`` are findings about how the key was supplied (short key, key file readable by others); they
    never contain key material and belong in the result's warnings.
    """

    _key: bytes
    warnings: tuple[str, ...] = field(default=(), compare=False)

    def __repr__(self) -> str:
        return f"Pseudonymiser(fingerprint={self.fingerprint})"

    @property
    def fingerprint(self) -> str:
        """A short, non-reversible tag of the key: the one public way to record which key a run used.

        Manifests and results record this, never the key or anything else derived from it.
        """
        return hmac.new(self._key, b"hiddenpop-key-fingerprint", hashlib.sha256).hexdigest()[:12]

    def hash_one(self, identifier: str) -> str:
        digest = hmac.new(self._key, identifier.encode("utf-8"), hashlib.sha256).hexdigest()
        return digest[:PSEUDONYM_HEX_CHARS]

    def hash_many(self, identifiers: Iterable[str | None]) -> list[str | None]:
        """Pseudonymise many identifiers; missing values (None/NaN/empty) stay missing."""
        out: list[str | None] = []
        key = self._key
        for ident in identifiers:
            if ident is None or (isinstance(ident, float) and np.isnan(ident)):
                out.append(None)
                continue
            text = str(ident).strip()
            if not text:
                out.append(None)
                continue
            out.append(hmac.new(key, text.encode("utf-8"), hashlib.sha256).hexdigest()[:PSEUDONYM_HEX_CHARS])
        return out

    def hasher(self) -> Callable[[str], str]:
        """A fast ``text -> pseudonym`` function equal to :meth:`hash_one` (no stripping), for bulk ingestion.

        HMAC-SHA256 (RFC 2104) from precomputed inner/outer pad states: H((K ^ opad) || H((K ^ ipad) || m)).
        Copying the two prepared SHA-256 states per identifier is several times faster than ``hmac.new``.
        """
        digest = self.digester()
        hex_chars = PSEUDONYM_HEX_CHARS

        def pseudonym(text: str) -> str:
            return digest(text).hex()[:hex_chars]

        return pseudonym

    def digester(self) -> Callable[[str], bytes]:
        """``text -> the full HMAC-SHA256 digest`` (32 bytes) of :meth:`hash_one`, from precomputed pad states.

        The pseudonym is the hex of the first ``PSEUDONYM_HEX_CHARS // 2`` bytes, so sorting those bytes sorts
        pseudonyms; bulk ingestion numbers identifiers from the bytes without building hex strings.
        """
        secret = self._key if len(self._key) <= 64 else hashlib.sha256(self._key).digest()
        secret = secret.ljust(64, b"\0")
        inner_copy = hashlib.sha256(bytes(b ^ 0x36 for b in secret)).copy
        outer_copy = hashlib.sha256(bytes(b ^ 0x5C for b in secret)).copy

        def digest(text: str) -> bytes:
            h = inner_copy()
            h.update(text.encode("utf-8"))
            o = outer_copy()
            o.update(h.digest())
            return o.digest()

        return digest

    @property
    def key_hex(self) -> str:
        """The key as hex, for passing into a query engine's HMAC function. Never log this value."""
        return self._key.hex()


def load_key(key_file: str | Path | None = None, *, env: str = KEY_ENV) -> Pseudonymiser:
    """Load the pseudonymisation key from ``key_file`` or the environment.

    Raises :class:`PrivacyError` when no key is available or it is too short; the message never contains key
    material.
    A key shorter than :data:`RECOMMENDED_KEY_BYTES` or a key file that group or others may read is accepted
    with a warning in :attr:`Pseudonymiser.warnings`; an empty key file is an error (not "no key passed").
    """
    raw: bytes | None = None
    warnings: list[str] = []
    if key_file is not None:
        path = Path(key_file)
        if not path.is_file():
            raise PrivacyError(f"{path}: key file not found; create one with `hiddenpop privacy keygen --out {path}`")
        raw = path.read_bytes().strip()
        if not raw:
            raise PrivacyError(
                f"key file {path} is empty; write a key into it with `hiddenpop privacy keygen --out NEWFILE`"
            )
        mode = path.stat().st_mode
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            warnings.append(
                f"key file {path} can be read by other users (mode {stat.S_IMODE(mode):04o}); "
                f"restrict it with `chmod 600 {path}`"
            )
    elif os.environ.get(env):
        raw = os.environ[env].encode("utf-8").strip()
    if not raw:
        raise PrivacyError(
            "no pseudonymisation key: pass --key-file FILE or set the environment variable "
            f"{env}; refusing to read identifiers without one"
        )
    if len(raw) < MIN_KEY_BYTES:
        raise PrivacyError(
            f"pseudonymisation key is too short ({len(raw)} bytes); use at least {MIN_KEY_BYTES} random bytes, "
            "e.g. `hiddenpop privacy keygen`"
        )
    if len(raw) < RECOMMENDED_KEY_BYTES:
        warnings.insert(0, (
            f"pseudonymisation key is short ({len(raw)} bytes); use at least {RECOMMENDED_KEY_BYTES} random bytes "
            "(`hiddenpop privacy keygen`) for new studies"
        ))
    return Pseudonymiser(raw, tuple(warnings))


def canonical_ip(text: str | None) -> str | None:
    """The one canonical spelling of an IP address, or ``None`` when ``text`` is not a valid address.

    Applied before hashing so that every spelling of one address is one identifier: surrounding blanks removed;
    a port suffix stripped (``10.0.0.1:443``, ``[2001:db8::1]:443``); IPv4 octets with leading zeros read as
    decimal (``010.000.000.001`` -> ``10.0.0.1``, up to three digits per octet); IPv4-mapped IPv6
    (``::ffff:10.0.0.1``) -> the IPv4 address; IPv6 compressed and lower case (RFC 5952). ``1.2.3.4.5``,
    ``999.1.1.1``, zone ids and text are not addresses. This is the reference for the vectorised SQL version
    used on report logs (:func:`hiddenpop.capture.events.reader.canonical_ip_sql`).
    """
    if text is None:
        return None
    value = text.strip()
    if value.startswith("["):
        inner, sep, rest = value[1:].partition("]")
        if not sep or (rest and not (rest.startswith(":") and rest[1:].isascii() and rest[1:].isdigit() and len(rest) <= 6)):
            return None
        value = inner
    elif value.count(":") == 1:
        host, _, port = value.partition(":")
        if not (port.isascii() and port.isdigit() and len(port) <= 5):
            return None
        value = host
    if ":" in value:
        if "%" in value:
            return None
        try:
            address = ipaddress.IPv6Address(value)
        except ValueError:
            return None
        mapped = address.ipv4_mapped
        return str(mapped) if mapped is not None else address.compressed
    parts = value.split(".")
    if len(parts) != 4 or not all(part.isascii() and part.isdigit() and len(part) <= 3 for part in parts):
        return None
    octets = [int(part) for part in parts]
    if any(octet > 255 for octet in octets):
        return None
    return ".".join(map(str, octets))


def generate_key() -> str:
    """A fresh random key (64 hex characters = 32 bytes of entropy)."""
    return os.urandom(32).hex()


def pseudonymise(identifiers: Iterable[str | None], key: Pseudonymiser) -> list[str | None]:
    """Convenience wrapper around :meth:`Pseudonymiser.hash_many`."""
    return key.hash_many(identifiers)
