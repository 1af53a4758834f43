"""The consent store in a SQLite file (see ``gateway.stores.sqlite`` for connections).

Decisions are only ever inserted; the latest of a (customer, purpose) is the one with the
highest id, found through the index on (purpose, customer, id). Lists of ids travel as one
JSON parameter joined through ``json_each``.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gateway.audit.storage import check_limit, chunks, newest_first, stamp
from gateway.consent import checks
from gateway.consent.base import ConsentStore
from gateway.consent.checks import CORRECTION_COLUMNS, DECISION_COLUMNS
from gateway.consent.errors import ERRORS
from gateway.consent.types import CORRECTION_STATUSES, ConsentDecision, CorrectionRequest
from gateway.stores.sqlite import SQLiteBacked, SQLiteDatabase

MIGRATIONS = (
    (1, (
        "CREATE TABLE consent_decisions (id INTEGER PRIMARY KEY AUTOINCREMENT,"
        " customer TEXT NOT NULL, purpose TEXT NOT NULL,"
        " objected INTEGER NOT NULL CHECK (objected IN (0, 1)), actor TEXT NOT NULL,"
        " source TEXT NOT NULL, at TEXT NOT NULL)",
        "CREATE INDEX consent_decisions_latest ON consent_decisions (purpose, customer, id)",
        "CREATE INDEX consent_decisions_customer ON consent_decisions (customer, id)",
        "CREATE TABLE correction_requests (id INTEGER PRIMARY KEY AUTOINCREMENT,"
        " customer TEXT NOT NULL, field TEXT NOT NULL, source TEXT NOT NULL, record TEXT,"
        " requested TEXT NOT NULL, message TEXT NOT NULL, requested_by TEXT NOT NULL,"
        " status TEXT NOT NULL CONSTRAINT correction_status_known CHECK (status IN"
        f" ({', '.join(repr(s) for s in CORRECTION_STATUSES)})),"
        " routed_to TEXT, created_at TEXT NOT NULL, updated_at TEXT NOT NULL,"
        " updated_by TEXT NOT NULL)",
        "CREATE INDEX correction_requests_status ON correction_requests (status, id)",
        "CREATE INDEX correction_requests_customer ON correction_requests (customer, id)",
    )),
)


class SQLiteConsentStore(SQLiteBacked, ConsentStore):
    """The consent store in one SQLite file (created with its parent directories)."""

    def __init__(self, path: Path | str) -> None:
        self.db = SQLiteDatabase(path, MIGRATIONS, ERRORS, "consent_schema_version")

    # --- consent ------------------------------------------------------------------------

    async def _insert_decisions(self, decisions: list[ConsentDecision]) -> list[ConsentDecision]:
        at = datetime.now(UTC)
        stored = []
        async with self.db.write() as db:
            for d in decisions:
                async with db.execute(
                        "INSERT INTO consent_decisions (customer, purpose, objected, actor, source, at)"
                        " VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
                        (d.customer, d.purpose, int(d.objected), d.actor, d.source, stamp(at))) as cursor:
                    row = await cursor.fetchone()
                assert row is not None
                stored.append(ConsentDecision(d.customer, d.purpose, d.objected, d.actor, d.source,
                                              row[0], at))
        return stored

    async def _objections(self, customers: list[str], purpose: str) -> set[str]:
        found: set[str] = set()
        for batch in chunks(customers):
            rows = await self.db.read(
                "SELECT customer FROM consent_decisions WHERE objected = 1 AND id IN"
                " (SELECT max(id) FROM consent_decisions WHERE purpose = ?"
                " AND customer IN (SELECT value FROM json_each(?)) GROUP BY customer)",
                (purpose, checks.json_list(batch)))
            found.update(row[0] for row in rows)
        return found

    async def objectors(self, purpose: str) -> set[str]:
        rows = await self.db.read(
            "SELECT customer FROM consent_decisions WHERE objected = 1 AND id IN"
            " (SELECT max(id) FROM consent_decisions WHERE purpose = ? GROUP BY customer)",
            (checks.purpose(purpose),))
        return {row[0] for row in rows}

    async def decided(self) -> set[str]:
        return {row[0] for row in await self.db.read("SELECT DISTINCT customer FROM consent_decisions")}

    async def latest(self, customers: Iterable[str]) -> dict[str, dict[str, ConsentDecision]]:
        found: dict[str, dict[str, ConsentDecision]] = {}
        for batch in chunks(dict.fromkeys(customers)):
            for row in await self.db.read(
                    f"SELECT {DECISION_COLUMNS} FROM consent_decisions WHERE id IN"
                    " (SELECT max(id) FROM consent_decisions"
                    " WHERE customer IN (SELECT value FROM json_each(?)) GROUP BY customer, purpose)"
                    " ORDER BY customer, purpose", (checks.json_list(batch),)):
                decision = checks.decision_from_row(row)
                found.setdefault(decision.customer, {})[decision.purpose] = decision
        return found

    async def history(self, customer: str, purpose: str | None = None,
                      limit: int = 100) -> list[ConsentDecision]:
        suffix, params = newest_first(checks.history_parts(customer, purpose), check_limit(limit), "?")
        rows = await self.db.read(f"SELECT {DECISION_COLUMNS} FROM consent_decisions {suffix}", params)
        return [checks.decision_from_row(row) for row in rows]

    # --- correction requests ------------------------------------------------------------

    async def _insert_correction(self, request: CorrectionRequest, status: str,
                                 routed_to: str | None) -> CorrectionRequest:
        now = stamp(datetime.now(UTC))
        async with self.db.write() as db:
            async with db.execute(
                    "INSERT INTO correction_requests (customer, field, source, record, requested,"
                    " message, requested_by, status, routed_to, created_at, updated_at, updated_by)"
                    f" VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING {CORRECTION_COLUMNS}",
                    (*checks.correction_values(request), status, routed_to, now, now,
                     request.requested_by)) as cursor:
                row = await cursor.fetchone()
        assert row is not None
        return checks.correction_from_row(row)

    async def correction(self, ident: int) -> CorrectionRequest | None:
        rows = await self.db.read(f"SELECT {CORRECTION_COLUMNS} FROM correction_requests"
                                  " WHERE id = ?", (ident,))
        return checks.correction_from_row(rows[0]) if rows else None

    async def _corrections(self, status: str | None, customer: str | None, source: str | None,
                           before: int | None, limit: int) -> list[CorrectionRequest]:
        suffix, params = newest_first(checks.corrections_parts(status, customer, source, before),
                                      limit, "?")
        rows = await self.db.read(f"SELECT {CORRECTION_COLUMNS} FROM correction_requests {suffix}",
                                  params)
        return [checks.correction_from_row(row) for row in rows]

    async def _update_correction(self, ident: int, status: str,
                                 actor: str) -> CorrectionRequest | None:
        async with self.db.write() as db:
            async with db.execute(
                    "UPDATE correction_requests SET status = ?, updated_at = ?, updated_by = ?"
                    f" WHERE id = ? RETURNING {CORRECTION_COLUMNS}",
                    (status, stamp(datetime.now(UTC)), actor, ident)) as cursor:
                row: Any = await cursor.fetchone()
        return checks.correction_from_row(row) if row else None
