"""A change request: operations on connectors, mappings and policies, applied all or nothing.

:func:`parse_changes` checks the request's shape strictly (unknown keys are errors, not
ignored); :func:`apply_changes` applies the operations to a copy of the document and reports
every problem it meets with its location. The copy is then validated as a whole
(gateway.admin.checks) before anything is stored.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateway import secrets
from gateway.admin.document import CONNECTOR_KEYS, MAPPING_KEYS, ConfigDocument, is_secret
from gateway.config import SOURCE_NAME, Problem

OPS = ("put", "delete")
KINDS = ("connector", "mapping", "policy", "policy-document")
CHANGE_KEYS = ("op", "kind", "name", "item")
#: More operations than this in one request is a mistake or an attack.
MAX_CHANGES = 100


class BadRequest(ValueError):
    """The request is malformed (not a validation problem of the config it proposes)."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("; ".join(map(str, problems)))


@dataclass(frozen=True)
class Change:
    op: str
    kind: str
    name: str
    item: Any = None

    @property
    def target(self) -> str:
        return f"{self.kind}:{self.name}"


def _unknown(value: Mapping[str, Any], allowed: Sequence[str], where: str) -> list[Problem]:
    problems = []
    for key in value:
        close = difflib.get_close_matches(str(key), allowed, n=1)
        if key not in allowed:
            hint = f"did you mean '{close[0]}'? " if close else ""
            problems.append(Problem(f"{where}.{key}",
                                    f"unknown key; {hint}allowed: {', '.join(allowed)}"))
    return problems


def parse_changes(value: Any) -> list[Change]:
    """The ``changes`` list of a request body; BadRequest listing every malformed entry."""
    if not isinstance(value, list) or not value:
        raise BadRequest([Problem("changes", "expected a non-empty list of "
                                             "{op, kind, name, item}")])
    if len(value) > MAX_CHANGES:
        raise BadRequest([Problem("changes", f"{len(value)} changes; at most {MAX_CHANGES} "
                                             f"per request")])
    problems: list[Problem] = []
    changes = []
    for i, entry in enumerate(value):
        where = f"changes[{i}]"
        if not isinstance(entry, dict):
            problems.append(Problem(where, "expected an object {op, kind, name, item}"))
            continue
        problems += _unknown(entry, CHANGE_KEYS, where)
        op, kind, name = entry.get("op"), entry.get("kind"), entry.get("name")
        if op not in OPS:
            problems.append(Problem(f"{where}.op", f"expected one of {', '.join(OPS)}"))
        if kind not in KINDS:
            problems.append(Problem(f"{where}.kind", f"expected one of {', '.join(KINDS)}"))
        if kind == "policy-document":
            name = name or "policy"
        if not isinstance(name, str) or not SOURCE_NAME.match(name):
            problems.append(Problem(f"{where}.name", "expected a name of lower-case letters, "
                                                     "digits, '-' and '_', starting with a letter"))
        if op == "put" and not isinstance(entry.get("item"), dict):
            problems.append(Problem(f"{where}.item", "expected an object (the new value)"))
        if op == "delete" and kind == "policy-document":
            problems.append(Problem(f"{where}.op", "the policy document cannot be deleted; "
                                                   "remove `policy:` from the config file"))
        changes.append(Change(str(op), str(kind), str(name), entry.get("item")))
    if problems:
        raise BadRequest(problems)
    return changes


@dataclass(frozen=True)
class SecretRules:
    """How secrets may be written: which environment holds the encryption key, which directory
    ``${file:...}`` references may point into."""

    environ: Mapping[str, str]
    secrets_dir: Path
    base_dir: Path


def apply_changes(document: ConfigDocument, changes: Sequence[Change],
                  rules: SecretRules) -> tuple[ConfigDocument, list[Problem]]:
    """A new document with every change applied, and the problems met (the new document is
    meaningless when there are any)."""
    new = document.copy()
    config: dict[str, Any] = new.config  # type: ignore[assignment]
    sources = config.setdefault("sources", {})
    problems: list[Problem] = []
    for change in changes:
        where = f"sources.{change.name}"
        if change.kind == "connector":
            if change.op == "delete":
                if sources.pop(change.name, None) is None:
                    problems.append(Problem(where, "no such connector to delete"))
                continue
            item = dict(change.item)
            item.pop("name", None)
            problems += _unknown(item, CONNECTOR_KEYS, where)
            old = sources.get(change.name) or {}
            spec = {k: v for k, v in old.items() if k in MAPPING_KEYS}
            spec.update({k: v for k, v in item.items() if k in CONNECTOR_KEYS and v is not None})
            connection, found = stored_connection(item.get("connection"), old.get("connection") or {},
                                            f"{where}.connection", rules)
            problems += found
            if connection is not None:
                spec["connection"] = connection
            # Keys the admin left out go; order: the connector's keys, then the mapping.
            sources[change.name] = {**{k: spec[k] for k in CONNECTOR_KEYS if k in spec},
                                    **{k: spec[k] for k in MAPPING_KEYS if k in spec}}
        elif change.kind == "mapping":
            spec = sources.get(change.name)
            if not isinstance(spec, dict):
                problems.append(Problem(where, "no connector of this name: add the connector "
                                               "first (in the same change)"))
                continue
            for key in MAPPING_KEYS:
                spec.pop(key, None)
            if change.op == "put":
                problems += _unknown(change.item, MAPPING_KEYS, where)
                spec.update({k: v for k, v in change.item.items() if k in MAPPING_KEYS})
        else:
            problems += _policy_change(new, change)
    return new, problems


def _policy_change(new: ConfigDocument, change: Change) -> list[Problem]:
    if new.policy is None:
        return [Problem("policy", "the config names no policy file; add `policy: "
                                  "policies.yaml` to it (docs/policies.md), then edit policies")]
    policy: dict[str, Any] = new.policy  # type: ignore[assignment]
    if change.kind == "policy-document":
        policy.clear()
        policy.update(change.item)
        return []
    roles = policy.setdefault("roles", {})
    if change.op == "delete":
        if roles.pop(change.name, None) is None:
            return [Problem(f"policy roles.{change.name}", "no such role to delete")]
        return []
    roles[change.name] = change.item
    return []


def stored_connection(value: Any, old: Mapping[str, Any], where: str,
                rules: SecretRules) -> tuple[dict[str, Any] | None, list[Problem]]:
    """The stored connection for a written one: secrets kept, encrypted or referenced."""
    if value is None:
        return None, []
    if not isinstance(value, dict):
        return None, [Problem(where, "expected an object of connection settings")]
    stored: dict[str, Any] = {}
    problems: list[Problem] = []
    for key, given in value.items():
        at = f"{where}.{key}"
        if isinstance(given, dict) and given.get("secret") is True:
            # The redacted form, read and written back: keep what is stored.
            if key in old:
                stored[key] = old[key]
            elif given.get("set"):
                problems.append(Problem(at, "no secret is stored to keep; type it in, or give "
                                            "an ${env:NAME} or ${file:PATH} reference"))
            continue
        if isinstance(given, dict) and set(given) == {"value"}:
            if not isinstance(given["value"], str) or not given["value"]:
                problems.append(Problem(at, "expected the secret as non-empty text"))
                continue
            try:
                stored[key] = secrets.encrypt(given["value"], rules.environ)
            except secrets.UnresolvedReference as exc:
                problems.append(Problem(at, str(exc)))
            continue
        if isinstance(given, dict):
            problems.append(Problem(at, 'expected a value, {"value": "<secret>"} to store a '
                                        'secret encrypted, or the {"secret": true, ...} form '
                                        'read from the API to keep it'))
            continue
        if given is None:
            continue
        if isinstance(given, str):
            problems += _references(given, at, rules)
        stored[key] = given
        if is_secret(str(key), given) and isinstance(given, str) and given.startswith("${enc:"):
            problems.append(Problem(at, 'write {"value": "<secret>"}: encrypted values are '
                                        'made by the gateway, not pasted'))
    return stored, problems


def _references(text: str, at: str, rules: SecretRules) -> list[Problem]:
    """``${file:...}`` references must stay inside the secrets directory."""
    problems = []
    for match in secrets.REFERENCE.finditer(text):
        if match.group(1) != "file":
            continue
        name = match.group(2).strip()
        path = (Path(name) if Path(name).is_absolute() else rules.base_dir / name).resolve()
        allowed = rules.secrets_dir.resolve()
        if not path.is_relative_to(allowed):
            problems.append(Problem(at, f"${{file:...}} must name a file inside {allowed} "
                                        f"(setting admin_secrets_dir); '{name}' is outside it"))
    return problems
