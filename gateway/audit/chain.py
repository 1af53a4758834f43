"""Sealing entries into one chain, and walking it back to find where it breaks.

An entry's hash is taken over a canonical encoding of its content and the hash of the entry
before it (``prev``): orjson with sorted keys, times as ``YYYY-MM-DDTHH:MM:SS.ffffffZ``. Plain
SHA-256 finds edits by anyone who does not recompute the hashes after them; with a key
(HMAC-SHA256, the key kept outside the database) nobody without the key can recompute them.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from typing import Any

import orjson

from gateway.audit.errors import AuditConfigError
from gateway.audit.events import entry_from_row
from gateway.audit.storage import stamp
from gateway.audit.types import AuditEntry, VerifyReport

#: The ``prev_hash`` of the first entry.
GENESIS = "0" * 64
#: Shortest key accepted, in bytes.
MIN_KEY_BYTES = 16
#: What the stored key check is an HMAC of: it tells a changed key apart without revealing it.
_KEY_CHECK = b"panorama-audit-key-check"
_VERSION = 1

_HOW = ('set audit.key to a random value of at least 16 bytes, kept out of the config file'
        ' (${env:NAME} or ${file:PATH}); make one with'
        ' `python -c "import secrets; print(secrets.token_urlsafe(32))"`')


def canonical(entry: AuditEntry) -> bytes:
    """The bytes an entry's hash is taken over (everything but the hash itself)."""
    return orjson.dumps({
        "v": _VERSION, "id": entry.id, "at": stamp(entry.at), "kind": entry.kind,
        "subject": entry.subject, "roles": list(entry.roles), "purpose": entry.purpose,
        "customers": list(entry.customers), "fields": [[f.path, f.masked] for f in entry.fields],
        "details": entry.details, "subject_kind": entry.subject_kind, "prev": entry.prev_hash,
    }, option=orjson.OPT_SORT_KEYS)


class Chain:
    """How entries are sealed: SHA-256, or HMAC-SHA256 when a key is given."""

    def __init__(self, key: bytes | str | None = None) -> None:
        if key is None:
            self._key: bytes | None = None
            self.mode, self.key_check = "sha256", ""
            return
        raw = key.encode() if isinstance(key, str) else key
        if not isinstance(raw, bytes) or not raw.strip():
            raise AuditConfigError(f"audit.key is empty: {_HOW}")
        if len(raw) < MIN_KEY_BYTES:
            raise AuditConfigError(
                f"audit.key is too short ({len(raw)} bytes, at least {MIN_KEY_BYTES}): {_HOW}")
        self._key = raw
        self.mode = "hmac-sha256"
        self.key_check = hmac.new(raw, _KEY_CHECK, hashlib.sha256).hexdigest()[:16]

    def __repr__(self) -> str:
        return f"Chain(mode={self.mode!r})"

    def seal(self, entry: AuditEntry) -> str:
        """The hash ``entry`` must carry."""
        content = canonical(entry)
        if self._key is None:
            return hashlib.sha256(content).hexdigest()
        return hmac.new(self._key, content, hashlib.sha256).hexdigest()

    def check_matches(self, mode: str, key_check: str) -> None:
        """AuditConfigError unless a log written as ``(mode, key_check)`` can be checked by this."""
        if (mode, key_check) == (self.mode, self.key_check):
            return
        if mode == "sha256":
            raise AuditConfigError(
                "the audit log was written without a key (plain SHA-256) and audit.key is now set;"
                " a key cannot be added to an existing chain: remove audit.key, or start a new log"
                " (another store URL) and keep the old one for the record")
        if self.mode == "sha256":
            raise AuditConfigError(
                "the audit log was written with an HMAC key and audit.key is not set:"
                " set it to the key the log was written with")
        raise AuditConfigError(
            "audit.key is not the key the audit log was written with: set the original key"
            " (a new key needs a new log; keep the old one for the record)")


class Walk:
    """The state of a walk along the chain, one row at a time; it stops at the first break."""

    def __init__(self, chain: Chain, head: tuple[int, str],
                 anchor: tuple[int, str] | None = None) -> None:
        self.chain = chain
        self.head = head
        self.anchor = anchor
        self.last_id, self.last_hash, self.count = 0, GENESIS, 0
        self.broken_id: int | None = None
        self.problem: str | None = None

    def _break(self, ident: int, problem: str) -> bool:
        self.broken_id, self.problem = ident, f"entry {ident} {problem}"
        return False

    def step(self, row: Sequence[Any]) -> bool:
        """Check the next row; False once the chain is broken."""
        expected = self.last_id + 1
        try:
            entry = entry_from_row(row)
        except (ValueError, TypeError, KeyError, IndexError):
            return self._break(row[0] if isinstance(row[0], int) else expected,
                               "cannot be read: a column was edited outside Panorama")
        if entry.id != expected:
            return self._break(expected, f"is missing: the log goes from entry {self.last_id} to"
                                         f" entry {entry.id} (deleted)")
        if entry.id > self.head[0]:
            return self._break(entry.id, f"is past the head (entry {self.head[0]}): it was added"
                                         " outside Panorama")
        if not hmac.compare_digest(self.chain.seal(entry), entry.hash):
            return self._break(entry.id, "does not match its hash: its content was edited, or it was"
                                         " moved from another place in the log")
        if entry.prev_hash != self.last_hash:
            return self._break(entry.id, f"does not follow entry {self.last_id}: its link (prev_hash)"
                                         " is not that entry's hash (entries were inserted, replaced or"
                                         " reordered)")
        indexed = row[12] if len(row) > 12 else None
        if indexed is not None and sorted(_decoded(indexed)) != sorted(entry.customers):
            return self._break(entry.id, "is not what the customer search index says of it: the index"
                                         " was edited (a customer would not see this access)")
        if self.anchor is not None and entry.id == self.anchor[0] and entry.hash != self.anchor[1]:
            return self._break(entry.id, "differs from the anchor noted earlier: the log was rewritten"
                                         " (hashes recomputed) up to here")
        self.last_id, self.last_hash, self.count = entry.id, entry.hash, self.count + 1
        return True

    def report(self) -> VerifyReport:
        """The outcome, once every row was stepped through (or the first break was met)."""
        head_id, head_hash = self.head
        if self.problem is None:
            self._finish(head_id, head_hash)
        return VerifyReport(self.count, head_id, head_hash, self.broken_id, self.problem)

    def _finish(self, head_id: int, head_hash: str) -> None:
        if self.last_id < head_id:
            self._break(self.last_id + 1, f"is missing: the log ends at entry {self.last_id} but its"
                                          f" head records entry {head_id} (the newest entries were"
                                          " deleted)")
        elif self.last_hash != head_hash:
            self._break(self.last_id, "is not the entry the head records: the newest entries were"
                                      " replaced")
        elif self.anchor is not None and self.anchor[0] > self.last_id:
            self._break(self.anchor[0], f"of the anchor is not in the log, which ends at entry"
                                        f" {self.last_id} (deleted, or the anchor is of another log)")


def _decoded(value: Any) -> list[Any]:
    return orjson.loads(value) if isinstance(value, str | bytes) else list(value)
