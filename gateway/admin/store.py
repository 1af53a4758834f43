"""Where config versions live: files next to the config (the default) or PostgreSQL.

Every change is a new :class:`Version` (who, when, why, the whole document); nothing is ever
edited in place, so any version can be restored. :meth:`ConfigStore.commit` is a
compare-and-set on the head version: a writer that read an older head gets :class:`StaleVersion`.

The file store keeps the live files (``panorama.yaml`` and its policy file) as the team wrote
them until the first change, then rewrites them from the head version; its history is one YAML
file per version in ``<config stem>.history/`` next to the config, which a team can commit to
git with the config itself. An edit made to the files by hand is picked up when the gateway
starts, as a version by ``file``.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import re
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import yaml

from gateway.admin.document import ConfigDocument, dump

#: Who a version read from hand-edited files is by.
FILE_AUTHOR = "file"
_VERSION_FILE = re.compile(r"^(\d{6,})\.yaml$")


class StoreError(RuntimeError):
    """The config store cannot be read or written; the message says which and how to fix."""


class StaleVersion(StoreError):
    """A commit expected a head version that is no longer the head."""

    def __init__(self, expected: int, head: int) -> None:
        self.expected, self.head = expected, head
        super().__init__(f"the configuration changed since version {expected} (now version "
                         f"{head}); reload it, redo the change and send If-Match: \"{head}\"")


@dataclass(frozen=True)
class Version:
    number: int
    author: str
    at: datetime
    reason: str
    summary: str
    document: ConfigDocument

    def meta(self) -> dict[str, Any]:
        return {"version": self.number, "author": self.author,
                "at": self.at.isoformat().replace("+00:00", "Z"), "reason": self.reason,
                "summary": self.summary}


Notify = Callable[[int], Awaitable[None]]


class ConfigStore(Protocol):
    async def open(self, initial: ConfigDocument) -> Version:
        """Open the store and return its head; an empty store starts at ``initial``."""

    async def head(self) -> Version: ...

    async def get(self, number: int) -> Version | None: ...

    async def history(self, first: int, before: int | None = None) -> list[Version]:
        """Versions newest first, below ``before`` when given."""

    async def commit(self, document: ConfigDocument, expected: int, author: str,
                     reason: str) -> Version:
        """Store ``document`` as version ``expected + 1``; StaleVersion if the head moved."""

    async def watch(self, notify: Notify) -> None:
        """Call ``notify(number)`` when another process commits a version (a no-op for a
        store only this process writes)."""

    async def aclose(self) -> None: ...


def read_document(config_path: Path) -> ConfigDocument:
    """The config file's document and its policy file's, as they are on disk."""
    config = _load(config_path)
    policy_name = config.get("policy") if isinstance(config, dict) else None
    policy = None
    if isinstance(policy_name, str) and (config_path.parent / policy_name).is_file():
        policy = _load(config_path.parent / policy_name)
    return ConfigDocument(config if isinstance(config, dict) else {}, policy)


def _load(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise StoreError(f"{path}: cannot be read ({type(exc).__name__}); fix the file") from None


def _write_atomically(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` at once: a reader sees the old file or the new one."""
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class FileStore:
    """Versions as files in ``<config stem>.history/``; the live files rewritten on commit."""

    def __init__(self, config_path: Path, history_dir: Path | None = None) -> None:
        self.config_path = config_path
        self.dir = history_dir or config_path.parent / f"{config_path.stem}.history"
        self._lock_path = self.dir / ".lock"

    async def open(self, initial: ConfigDocument) -> Version:
        return await asyncio.to_thread(self._open, initial)

    def _open(self, initial: ConfigDocument) -> Version:
        self.dir.mkdir(parents=True, exist_ok=True)
        with self._locked():
            numbers = self._numbers()
            if not numbers:
                return self._write_version(1, initial, FILE_AUTHOR, "the config files as found",
                                           None)
            head = self._read(numbers[-1])
            if initial != head.document:
                # Edited by hand (or by git) since: that is a version too.
                return self._write_version(head.number + 1, initial, FILE_AUTHOR,
                                           "the config files were edited outside Panorama", head)
            return head

    async def head(self) -> Version:
        return await asyncio.to_thread(self._head)

    def _head(self) -> Version:
        numbers = self._numbers()
        if not numbers:
            raise StoreError(f"{self.dir}: no version; the gateway writes the first at start-up")
        return self._read(numbers[-1])

    async def get(self, number: int) -> Version | None:
        return await asyncio.to_thread(self._get, number)

    def _get(self, number: int) -> Version | None:
        return self._read(number) if self._path(number).is_file() else None

    async def history(self, first: int, before: int | None = None) -> list[Version]:
        def read() -> list[Version]:
            numbers = [n for n in self._numbers() if before is None or n < before]
            return [self._read(n) for n in reversed(numbers[-first:])] if first > 0 else []

        return await asyncio.to_thread(read)

    async def commit(self, document: ConfigDocument, expected: int, author: str,
                     reason: str) -> Version:
        return await asyncio.to_thread(self._commit, document, expected, author, reason)

    def _commit(self, document: ConfigDocument, expected: int, author: str,
                reason: str) -> Version:
        with self._locked():  # across processes sharing the directory, too
            head = self._head()
            if head.number != expected:
                raise StaleVersion(expected, head.number)
            version = self._write_version(expected + 1, document, author, reason, head)
            self._write_live(document)
            return version

    async def watch(self, notify: Notify) -> None:
        """Only this process writes here (one gateway per config directory)."""

    async def aclose(self) -> None:
        """Nothing stays open between calls."""

    # -- files --------------------------------------------------------------------------

    def _locked(self) -> Any:
        class _Lock:
            def __enter__(lock) -> None:  # noqa: N805 (the enclosing store is `self`)
                lock.handle = open(self._lock_path, "a")  # noqa: SIM115
                fcntl.flock(lock.handle, fcntl.LOCK_EX)

            def __exit__(lock, *exc: object) -> None:  # noqa: N805
                fcntl.flock(lock.handle, fcntl.LOCK_UN)
                lock.handle.close()

        return _Lock()

    def _numbers(self) -> list[int]:
        found = (_VERSION_FILE.match(p.name) for p in self.dir.iterdir()) if self.dir.is_dir() \
            else iter(())
        return sorted(int(m.group(1)) for m in found if m)

    def _path(self, number: int) -> Path:
        return self.dir / f"{number:06d}.yaml"

    def _read(self, number: int) -> Version:
        data = _load(self._path(number))
        try:
            return Version(int(data["version"]), str(data["author"]),
                           datetime.fromisoformat(str(data["at"]).replace("Z", "+00:00")),
                           str(data["reason"]), str(data.get("summary") or ""),
                           ConfigDocument(data["config"], data.get("policy")))
        except (KeyError, TypeError, ValueError):
            raise StoreError(f"{self._path(number)}: not a config version written by Panorama; "
                             f"move it out of {self.dir}") from None

    def _write_version(self, number: int, document: ConfigDocument, author: str, reason: str,
                       previous: Version | None) -> Version:
        version = Version(number, author, datetime.now(UTC).replace(microsecond=0), reason,
                          document.summary_against(previous.document if previous else None),
                          document)
        _write_atomically(self._path(number), dump(
            {**version.meta(), "config": dict(document.config), "policy": document.policy}))
        return version

    def _write_live(self, document: ConfigDocument) -> None:
        header = (f"# Written by Panorama's admin API; every version, with who, when and why, "
                  f"is in {self.dir.name}/ (docs/admin.md).\n")
        _write_atomically(self.config_path, header + dump(dict(document.config)))
        if document.policy is not None and document.policy_path:
            _write_atomically(self.config_path.parent / document.policy_path,
                              header + dump(dict(document.policy)))


def open_config_store(url: str, config_path: Path) -> ConfigStore:
    """``file`` (the default: history next to the config), ``file:DIR`` (history in DIR) or a
    ``postgresql://`` URL."""
    if url in ("", "file"):
        return FileStore(config_path)
    if url.startswith("file:"):
        return FileStore(config_path, Path(url.removeprefix("file:")))
    if url.startswith(("postgresql://", "postgres://")):
        from gateway.admin.store_postgres import PostgresStore

        return PostgresStore(url)
    raise StoreError("config_store: expected `file`, `file:DIR` or a postgresql:// URL")
