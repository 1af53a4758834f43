"""The consent store in PostgreSQL, for gateway replicas sharing it (see
``gateway.stores.postgres`` for the pool, schema and migrations).

Decisions are only ever inserted; the latest of a (customer, purpose) is the one with the
highest id. Lists of ids travel as ``text[]`` parameters.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from gateway.audit.storage import check_limit, chunks, newest_first
from gateway.consent import checks
from gateway.consent.base import ConsentStore
from gateway.consent.checks import CORRECTION_COLUMNS, DECISION_COLUMNS
from gateway.consent.errors import ERRORS
from gateway.consent.types import CORRECTION_STATUSES, ConsentDecision, CorrectionRequest
from gateway.stores.postgres import PostgresBacked, PostgresDatabase

#: The schema the tables live in when the URL names none.
DEFAULT_SCHEMA = "panorama_consent"

MIGRATIONS = (
    (1, (
        "CREATE TABLE consent_decisions (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
        " customer text NOT NULL, purpose text NOT NULL, objected boolean NOT NULL,"
        " actor text NOT NULL, source text NOT NULL, at timestamptz NOT NULL)",
        "CREATE INDEX consent_decisions_latest ON consent_decisions (purpose, customer, id)",
        "CREATE INDEX consent_decisions_customer ON consent_decisions (customer, id)",
        "CREATE TABLE correction_requests (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
        " customer text NOT NULL, field text NOT NULL, source text NOT NULL, record text,"
        " requested text NOT NULL, message text NOT NULL, requested_by text NOT NULL,"
        " status text NOT NULL CONSTRAINT correction_status_known CHECK (status IN"
        f" ({', '.join(repr(s) for s in CORRECTION_STATUSES)})),"
        " routed_to text, created_at timestamptz NOT NULL, updated_at timestamptz NOT NULL,"
        " updated_by text NOT NULL)",
        "CREATE INDEX correction_requests_status ON correction_requests (status, id)",
        "CREATE INDEX correction_requests_customer ON correction_requests (customer, id)",
    )),
)


class PostgresConsentStore(PostgresBacked, ConsentStore):
    """The consent store in a PostgreSQL database, in ``schema`` (created if missing)."""

    def __init__(self, dsn: str, *, schema: str = DEFAULT_SCHEMA, pool_size: int = 5) -> None:
        self.db = PostgresDatabase(dsn, schema, MIGRATIONS, ERRORS, "consent_schema_version",
                                   pool_size=pool_size)

    # --- consent ------------------------------------------------------------------------

    async def _insert_decisions(self, decisions: list[ConsentDecision]) -> list[ConsentDecision]:
        at = datetime.now(UTC)
        columns = [list(c) for c in zip(*((d.customer, d.purpose, d.objected, d.actor, d.source)
                                          for d in decisions), strict=True)]
        rows = await self.db.fetch(
            "INSERT INTO consent_decisions (customer, purpose, objected, actor, source, at)"
            " SELECT c, p, o, a, s, $6::timestamptz FROM unnest($1::text[], $2::text[],"
            " $3::boolean[], $4::text[], $5::text[]) WITH ORDINALITY AS d (c, p, o, a, s, n)"
            " ORDER BY n RETURNING id", *columns, at)
        # Ids are drawn in the order rows are inserted, which is the decisions' order.
        idents = sorted(row[0] for row in rows)
        return [ConsentDecision(d.customer, d.purpose, d.objected, d.actor, d.source, ident, at)
                for d, ident in zip(decisions, idents, strict=True)]

    async def _objections(self, customers: list[str], purpose: str) -> set[str]:
        found: set[str] = set()
        for batch in chunks(customers):
            rows = await self.db.fetch(
                "SELECT customer FROM (SELECT DISTINCT ON (customer) customer, objected"
                " FROM consent_decisions WHERE purpose = $1 AND customer = ANY ($2::text[])"
                " ORDER BY customer, id DESC) AS latest WHERE objected", purpose, batch)
            found.update(row[0] for row in rows)
        return found

    async def objectors(self, purpose: str) -> set[str]:
        rows = await self.db.fetch(
            "SELECT customer FROM (SELECT DISTINCT ON (customer) customer, objected"
            " FROM consent_decisions WHERE purpose = $1 ORDER BY customer, id DESC) AS latest"
            " WHERE objected", checks.purpose(purpose))
        return {row[0] for row in rows}

    async def decided(self) -> set[str]:
        return {row[0] for row in await self.db.fetch("SELECT DISTINCT customer FROM consent_decisions")}

    async def latest(self, customers: Iterable[str]) -> dict[str, dict[str, ConsentDecision]]:
        found: dict[str, dict[str, ConsentDecision]] = {}
        for batch in chunks(dict.fromkeys(customers)):
            for row in await self.db.fetch(
                    f"SELECT DISTINCT ON (customer, purpose) {DECISION_COLUMNS}"
                    " FROM consent_decisions WHERE customer = ANY ($1::text[])"
                    " ORDER BY customer, purpose, id DESC", batch):
                decision = checks.decision_from_row(row)
                found.setdefault(decision.customer, {})[decision.purpose] = decision
        return found

    async def history(self, customer: str, purpose: str | None = None,
                      limit: int = 100) -> list[ConsentDecision]:
        suffix, params = newest_first(checks.history_parts(customer, purpose), check_limit(limit), "$")
        rows = await self.db.fetch(f"SELECT {DECISION_COLUMNS} FROM consent_decisions {suffix}",
                                   *params)
        return [checks.decision_from_row(row) for row in rows]

    # --- correction requests ------------------------------------------------------------

    async def _insert_correction(self, request: CorrectionRequest, status: str,
                                 routed_to: str | None) -> CorrectionRequest:
        now = datetime.now(UTC)
        rows = await self.db.fetch(
            "INSERT INTO correction_requests (customer, field, source, record, requested,"
            " message, requested_by, status, routed_to, created_at, updated_at, updated_by)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10, $7)"
            f" RETURNING {CORRECTION_COLUMNS}",
            *checks.correction_values(request), status, routed_to, now)
        return checks.correction_from_row(rows[0])

    async def correction(self, ident: int) -> CorrectionRequest | None:
        rows = await self.db.fetch(f"SELECT {CORRECTION_COLUMNS} FROM correction_requests"
                                   " WHERE id = $1", ident)
        return checks.correction_from_row(rows[0]) if rows else None

    async def _corrections(self, status: str | None, customer: str | None, source: str | None,
                           before: int | None, limit: int) -> list[CorrectionRequest]:
        suffix, params = newest_first(checks.corrections_parts(status, customer, source, before),
                                      limit, "$")
        rows = await self.db.fetch(f"SELECT {CORRECTION_COLUMNS} FROM correction_requests {suffix}",
                                   *params)
        return [checks.correction_from_row(row) for row in rows]

    async def _update_correction(self, ident: int, status: str,
                                 actor: str) -> CorrectionRequest | None:
        rows = await self.db.fetch(
            "UPDATE correction_requests SET status = $1, updated_at = $2, updated_by = $3"
            f" WHERE id = $4 RETURNING {CORRECTION_COLUMNS}",
            status, datetime.now(UTC), actor, ident)
        return checks.correction_from_row(rows[0]) if rows else None
