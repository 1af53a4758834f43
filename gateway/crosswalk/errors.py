"""One exception tree for the crosswalk store.

Library exceptions (aiosqlite/sqlite3, asyncpg, OSError) are translated once, in the backend
that caught them (``raise ... from exc``), so callers only ever see these::

    CrosswalkError           code                  meaning
    ├── CrosswalkConfigError CROSSWALK_CONFIG      bad URL, schema name or identity.secret
    ├── CrosswalkUnavailable CROSSWALK_UNAVAILABLE the store cannot be opened or reached
    ├── InvalidIndexRun      CROSSWALK_INDEX_RUN   an IndexRun breaks a rule: nothing of it applied
    └── InvalidStewardAction CROSSWALK_STEWARD     a steward action breaks a rule: nothing recorded

Messages may name refs (source, local key) and global ids, which are identifiers; they never
hold a URL's password, a secret, a key hash or a value a hash was made from.
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit


class CrosswalkError(Exception):
    """Base of every error the crosswalk store raises."""

    code = "CROSSWALK_ERROR"


class CrosswalkConfigError(CrosswalkError, ValueError):
    """The store is configured with something it cannot use."""

    code = "CROSSWALK_CONFIG"


class CrosswalkUnavailable(CrosswalkError):
    """The store's database cannot be opened or reached."""

    code = "CROSSWALK_UNAVAILABLE"


class InvalidIndexRun(CrosswalkError, ValueError):
    """An index run breaks a rule of the store; the previous crosswalk is intact."""

    code = "CROSSWALK_INDEX_RUN"


class InvalidStewardAction(CrosswalkError, ValueError):
    """A steward action breaks a rule of the store; nothing was recorded."""

    code = "CROSSWALK_STEWARD"


#: Database constraint name -> what the rule means, for messages. Both backends name their
#: constraints the same way; a backend maps its library's report onto one of these names.
RULES: dict[str, str] = {
    "member_ref_not_empty": "every member needs a non-empty source and local key",
    "member_id_not_empty": "every member needs a non-empty global id",
    "run_members_pkey": "a ref is listed more than once in the run's members",
    "key_hash_of_member": "key hashes are given for a ref that is not a member after the run",
    "key_hash_is_hex": "key hashes must be hex HMAC digests (KeyHasher.hash), never clear values",
    "redirect_ids_not_empty": "a redirect needs non-empty old and new ids",
    "redirect_not_to_itself": "a redirect cannot point an id to itself",
    "watermark_not_empty": "a watermark needs a non-empty source",
    "must_link_ordered": "a must-link pair must join two different refs",
    "cannot_link_ordered": "a cannot-link pair must join two different refs",
    "steward_action_known": "a steward action is one of link, unlink, merge, split",
    "steward_actor_not_empty": "a steward action needs an actor",
}


def rule_broken(constraint: str | None) -> str:
    """The message for a violated constraint, by name."""
    return RULES.get(constraint or "", f"a rule of the store was broken ({constraint or 'unknown'})")


def redact_url(url: str) -> str:
    """``url`` with its password, if any, replaced by ``***``: safe for messages and logs."""
    try:
        parts = urlsplit(url)
        if parts.password is None:
            return url
        host = parts.netloc.rpartition("@")[2]
        user = parts.username or ""
        return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))
    except ValueError:  # unparseable (a bad port, a bracket): show no part of it
        return "<unparseable URL>"


#: What a refusal means for the caller, by error class: nothing of it was written.
REFUSED: dict[type[CrosswalkError], str] = {
    InvalidIndexRun: "index run rejected, nothing applied",
    InvalidStewardAction: "steward action refused, nothing recorded",
}


def refused(error: type[CrosswalkError], detail: str) -> CrosswalkError:
    """``error`` with a message saying that nothing was written, and why."""
    return error(f"{REFUSED.get(error, 'refused')}: {detail}")
