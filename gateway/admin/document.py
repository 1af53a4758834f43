"""The editable config as one value: the config file's document and its policy file's.

The admin API never edits files or running objects directly: it reads resources out of a
:class:`ConfigDocument`, applies a change to a copy, validates the copy as a whole, and only then
stores it as a new version. Resources are views of the document:

- a **connector** is a source's entry without its mapping (kind, shop, region, connection...);
- a **mapping** is a source's ``customer``, ``transactions`` and ``interactions``;
- a **policy** is a role of the policy file; the ``policy-document`` is the whole file.

Secret connection values leave a document only as :func:`redacted` placeholders.
"""

from __future__ import annotations

import copy
import difflib
import hashlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import yaml

from gateway import secrets

#: A source's keys that describe its connector; the others are its mapping.
CONNECTOR_KEYS = ("kind", "shop", "region", "connection", "timeout", "pool_size",
                  "cache_ttl_seconds", "defaults")
MAPPING_KEYS = ("customer", "transactions", "interactions")
#: Connection keys that are secrets, or may carry one (a DSN or URL with a password).
SECRET_KEYS = secrets.SECRET_KEYS | {"dsn", "url"}


@dataclass(frozen=True)
class ConfigDocument:
    """The config file's document and the policy file's (None: the config names none)."""

    config: Mapping[str, Any]
    policy: Mapping[str, Any] | None

    def copy(self) -> ConfigDocument:
        return ConfigDocument(copy.deepcopy(dict(self.config)),
                              copy.deepcopy(dict(self.policy)) if self.policy is not None else None)

    @property
    def sources(self) -> Mapping[str, Any]:
        return self.config.get("sources") or {}

    @property
    def policy_path(self) -> str | None:
        value = self.config.get("policy")
        return value if isinstance(value, str) else None

    def connector(self, name: str) -> dict[str, Any] | None:
        spec = self.sources.get(name)
        if not isinstance(spec, Mapping):
            return None
        item = {"name": name, **{k: spec[k] for k in CONNECTOR_KEYS if k in spec}}
        if isinstance(item.get("connection"), Mapping):
            item["connection"] = redacted(item["connection"])
        return item

    def mapping(self, name: str) -> dict[str, Any] | None:
        spec = self.sources.get(name)
        if not isinstance(spec, Mapping):
            return None
        return {k: json_ready(spec[k]) for k in MAPPING_KEYS if k in spec}

    def roles(self) -> Mapping[str, Any]:
        return (self.policy or {}).get("roles") or {}

    def role(self, name: str) -> Any:
        return json_ready(self.roles().get(name))

    def to_yaml(self) -> str:
        """Both documents as one YAML text, secrets redacted: what history diffs compare."""
        shown = copy.deepcopy(dict(self.config))
        for spec in (shown.get("sources") or {}).values():
            if isinstance(spec, dict) and isinstance(spec.get("connection"), Mapping):
                spec["connection"] = {k: _shown(k, v) for k, v in spec["connection"].items()}
        return dump({"config": shown, "policy": self.policy})

    def summary_against(self, before: ConfigDocument | None) -> str:
        """What changed, in words: `connector chinook added, policy finance changed`."""
        if before is None:
            return "initial version"
        parts = [f"{kind} {name} {change}" for kind, name, change in _changes(before, self)]
        return ", ".join(parts) or "no change"


def _changes(before: ConfigDocument, after: ConfigDocument) -> Iterator[tuple[str, str, str]]:
    views = (("connector", ConfigDocument.connector, lambda d: d.sources),
             ("mapping", ConfigDocument.mapping, lambda d: d.sources),
             ("policy", ConfigDocument.role, ConfigDocument.roles))
    for kind, read, names in views:
        for name in dict.fromkeys([*names(before), *names(after)]):
            old, new = read(before, str(name)), read(after, str(name))
            if kind == "connector" and old is not None and new is not None:
                # Secrets are redacted in the views: compare the stored values too.
                old = (old, dict(before.sources[name].get("connection") or {}))
                new = (new, dict(after.sources[name].get("connection") or {}))
            if old == new:
                continue
            yield kind, str(name), ("added" if not old else "removed" if not new else "changed")
    rest = ("categories", "purposes", "version")
    if {k: (before.policy or {}).get(k) for k in rest} != {k: (after.policy or {}).get(k)
                                                           for k in rest}:
        yield "policy-document", "categories/purposes", "changed"
    others = {k: v for k, v in before.config.items() if k != "sources"}
    if others != {k: v for k, v in after.config.items() if k != "sources"}:
        yield "config", "other sections", "changed"


def diff(before: ConfigDocument | None, after: ConfigDocument, label: str) -> str:
    """A unified diff of the two, secrets redacted."""
    old = before.to_yaml().splitlines(keepends=True) if before else []
    return "".join(difflib.unified_diff(old, after.to_yaml().splitlines(keepends=True),
                                        "before", label))


def json_ready(value: Any) -> Any:
    """A copy whose keys are all text. YAML 1.1 reads an unquoted ``on:`` (a join's condition)
    as the boolean true, and dates as dates; JSON keys are strings, and the config loader takes
    ``on`` back either way."""
    if isinstance(value, Mapping):
        return {("on" if k is True else "off" if k is False else str(k)): json_ready(v)
                for k, v in value.items()}
    if isinstance(value, list):
        return [json_ready(v) for v in value]
    return copy.deepcopy(value)


def is_secret(key: str, value: Any) -> bool:
    """Whether a connection value is (or holds) a secret that must never be shown."""
    if key in secrets.SECRET_KEYS:
        return True
    if key in SECRET_KEYS and isinstance(value, str):
        return bool(secrets.DSN_PASSWORD.match(value)) or "${" in value
    return False


def redacted(connection: Mapping[str, Any]) -> dict[str, Any]:
    """A connection with every secret replaced by ``{"secret": true, "set": .., "ref": ..}``:
    ``ref`` names an ``${env:..}`` or ``${file:..}`` reference (not secret), never a value."""
    out: dict[str, Any] = {}
    for key, value in connection.items():
        if not is_secret(str(key), value):
            out[str(key)] = copy.deepcopy(value)
            continue
        match = secrets.REFERENCE.fullmatch(value) if isinstance(value, str) else None
        ref = value if match and match.group(1) in ("env", "file") else None
        out[str(key)] = {"secret": True, "set": bool(value), "ref": ref,
                         "encrypted": bool(match and match.group(1) == "enc")}
    return out


def _shown(key: str, value: Any) -> Any:
    shown = redacted({key: value})[key]
    if isinstance(shown, dict) and shown.get("secret"):
        if shown["ref"]:
            return shown["ref"]
        if shown["encrypted"]:
            # A digest of the ciphertext, never of the secret: a diff shows that it changed.
            return f"(encrypted secret #{hashlib.sha256(value.encode()).hexdigest()[:8]})"
        return "(secret set)"
    return shown


def dump(document: Any) -> str:
    return yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=100)
