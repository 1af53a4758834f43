"""One exception tree for the crosswalk store.

Library exceptions (aiosqlite/sqlite3, asyncpg, OSError) are translated once, in the database
layer (``gateway.stores.sqlite``, ``gateway.stores.postgres``), so callers only ever see these::

    CrosswalkError           code                  meaning
    ├── CrosswalkConfigError CROSSWALK_CONFIG      bad URL, schema name or identity.secret
    ├── CrosswalkUnavailable CROSSWALK_UNAVAILABLE the store cannot be opened or reached
    ├── InvalidIndexRun      CROSSWALK_INDEX_RUN   an IndexRun breaks a rule: nothing of it applied
    └── InvalidStewardAction CROSSWALK_STEWARD     a steward action breaks a rule: nothing recorded

Messages may name refs (source, local key) and global ids, which are identifiers; they never
hold a URL's password, a secret, a key hash or a value a hash was made from.
"""

from __future__ import annotations

from gateway.stores.types import ErrorKinds


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

#: What a refusal means for the caller, by error class: nothing of it was written.
REFUSED: dict[type[Exception], str] = {
    InvalidIndexRun: "index run rejected, nothing applied",
    InvalidStewardAction: "steward action refused, nothing recorded",
}

#: The crosswalk's errors and rules, for the database layer. Each write names its own error
#: (InvalidIndexRun, InvalidStewardAction); anything else refused is a CrosswalkError.
ERRORS = ErrorKinds("crosswalk", CrosswalkError, CrosswalkConfigError, CrosswalkUnavailable,
                    CrosswalkError, RULES, REFUSED, refusal="refused", url="the crosswalk URL")
