"""The audit log: one contract suite, run against SQLite and PostgreSQL; config and commands.

:class:`AuditContract` holds every test of the contract; a backend's class provides a ``log``
fixture (an opened, empty log), ``reopen`` (a second log on the same place, as a second
gateway replica would open it), ``url`` (the store URL of the log), ``tamper`` (SQL run the
way an attacker with database access would: triggers out of the way) and ``raw`` (SQL run
plainly, triggers in force).
"""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
import tracemalloc
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest

from gateway import audit_cli
from gateway.audit import (
    GENESIS,
    AuditConfigError,
    AuditError,
    AuditEvent,
    AuditFilter,
    AuditLog,
    AuditUnavailable,
    Chain,
    FieldAccess,
    InvalidAuditEvent,
    PostgresAuditLog,
    SQLiteAuditLog,
    audit_location,
    load_audit_config,
    open_audit_log,
    parse_audit_section,
)
from gateway.audit.chain import canonical

PG_DATABASE = "panorama_test_audit"
PG_URL = f"postgresql://postgres@127.0.0.1:5432/{PG_DATABASE}"
KEY = "an-audit-key-of-more-than-16-bytes"


def read(subject="app:till-paris", customers=("cus_a",), purpose="support", **details) -> AuditEvent:
    return AuditEvent("read", subject, ("till",), purpose, customers,
                      (FieldAccess("Customer.emails", masked=True), "Customer.name"), details)


async def fill(log: AuditLog, count: int) -> list:
    """``count`` entries, one customer each (cus_0, cus_1, cus_2 in turn)."""
    return await log.append_many([read(customers=(f"cus_{i % 3}",), n=i) for i in range(count)])


class AuditContract:
    def reopen(self, log: AuditLog, key: str | None = None) -> AuditLog:
        raise NotImplementedError

    def url(self, log: AuditLog) -> str:
        raise NotImplementedError

    async def tamper(self, log: AuditLog, *statements: str) -> None:
        raise NotImplementedError

    async def raw(self, log: AuditLog, statement: str) -> None:
        raise NotImplementedError

    # --- appending ----------------------------------------------------------------------

    async def test_an_append_is_stored_as_given_and_chained(self, log):
        first = await log.append(read(operation="customer", outcome="ok"))
        assert (first.id, first.prev_hash) == (1, GENESIS)
        assert first.at.tzinfo is UTC and abs(datetime.now(UTC) - first.at) < timedelta(seconds=5)
        assert first.fields == (FieldAccess("Customer.emails", True), FieldAccess("Customer.name", False))
        assert first.roles == ("till",) and first.customers == ("cus_a",)
        assert first.details == {"operation": "customer", "outcome": "ok"}
        assert first.hash == log.chain.seal(first) and len(first.hash) == 64
        second = await log.append(AuditEvent("denied", "app:crm", ("marketing",), "marketing",
                                             details={"reason": "policy:no-finance"}))
        assert (second.id, second.prev_hash) == (2, first.hash)
        assert await log.head() == (2, second.hash)
        page = await log.query()
        assert page.entries == [second, first] and page.next_before is None

    async def test_a_batch_is_one_run_of_the_chain(self, log):
        entries = await fill(log, 5)
        assert [e.id for e in entries] == [1, 2, 3, 4, 5]
        assert all(b.prev_hash == a.hash for a, b in zip(entries, entries[1:], strict=False))
        assert await log.append_many([]) == []
        assert (await log.verify()).entries == 5

    async def test_one_event_per_request_whatever_it_touched(self, log):
        customers = [f"cus_{i}" for i in range(100)]
        entry = await log.append(AuditEvent(
            "read", "app:web", ("web",), "support", customers + customers[:10],
            [FieldAccess("Customer.name"), ("Customer.phones", True), ("Customer.phones", False),
             ("Customer.emails", True), ("Customer.emails", True)]))
        assert entry.customers == tuple(customers)  # each once, in order
        # A path read in clear once went out in clear.
        assert entry.fields == (FieldAccess("Customer.name"), FieldAccess("Customer.phones", False),
                                FieldAccess("Customer.emails", True))
        assert (await log.query()).entries == [entry]

    async def test_concurrent_appends_are_committed_together_in_one_chain(self, log):
        entries = await asyncio.gather(*(log.append(read(n=i)) for i in range(200)))
        assert sorted(e.id for e in entries) == list(range(1, 201))
        assert [e.details["n"] for e in sorted(entries, key=lambda e: e.id)] == list(range(200))
        report = await log.verify()
        assert report.ok and report.entries == 200 and report.head_id == 200

    async def test_appends_from_two_connections_keep_one_chain(self, log):
        other = self.reopen(log)
        async with other:
            await asyncio.gather(*(log.append(read("a", n=i)) for i in range(60)),
                                 *(other.append(read("b", n=i)) for i in range(60)),
                                 log.append_many([read("a") for _ in range(30)]),
                                 other.append_many([read("b") for _ in range(30)]))
            assert (await other.verify()).entries == 180
        report = await log.verify()
        assert report.ok and report.head_id == 180

    async def test_appends_from_two_processes_keep_one_chain(self, log):
        script = ("import asyncio, sys\n"
                  "from gateway.audit import AuditEvent, open_audit_log\n"
                  "async def main():\n"
                  "    async with open_audit_log(sys.argv[1]) as log:\n"
                  "        await asyncio.gather(*(log.append(AuditEvent('read', sys.argv[2],"
                  " customers=['cus_a'])) for _ in range(100)))\n"
                  "asyncio.run(main())\n")
        processes = [subprocess.Popen([sys.executable, "-c", script, self.url(log), f"replica-{i}"])
                     for i in range(2)]
        await log.append_many([read() for _ in range(50)])
        assert [p.wait(timeout=60) for p in processes] == [0, 0]
        report = await log.verify()
        assert report.ok and report.entries == 250
        for replica in ("replica-0", "replica-1"):
            page = await log.query(AuditFilter(subject=replica, limit=1000))
            assert len(page.entries) == 100

    async def test_closing_writes_what_is_pending(self, log):
        other = self.reopen(log)
        await other.open()
        tasks = [asyncio.create_task(other.append(read(n=i))) for i in range(20)]
        await asyncio.sleep(0)  # the appends are queued, not yet written
        await other.aclose()
        assert all(t.done() and not t.exception() for t in tasks)
        assert (await log.head())[0] == 20

    @pytest.mark.parametrize("event, says", [
        (AuditEvent("erase", "x"), "unknown kind 'erase'; known: read, denied"),
        (AuditEvent("read", ""), "subject"),
        (AuditEvent("read", "x", customers=["jean.dupont@example.com"]), "customer #1 is not a global id"),
        (AuditEvent("read", "x", customers="cus_a"), "list of global ids"),
        (AuditEvent("read", "x", customers=[f"cus_{i}" for i in range(10_001)]), "chunk"),
        (AuditEvent("read", "x", fields=["Customer emails"]), "field #1"),
        (AuditEvent("read", "x", roles=["support agent"]), "roles"),
        (AuditEvent("read", "x", purpose="direct marketing"), "purpose"),
        (AuditEvent("read", "x", details={"email": "jean.dupont@example.com"}), "details .email"),
        (AuditEvent("read", "x", details={"lookup": {"name": "Jean Dupont"}}), "details .lookup.name"),
        (AuditEvent("read", "x", details={"phone": "+33612345678"}), "details .phone"),
        (AuditEvent("read", "x", details={"took": 1.5}), "no floats"),
        (AuditEvent("read", "x", details={"at": datetime.now(UTC)}), "no floats or dates"),
        (AuditEvent("read", "x", details={"bad key": 1}), "every key must be a name"),
        (AuditEvent("read", "x", details={"big": 2 ** 60}), "2**53"),
    ])
    async def test_an_event_that_breaks_a_rule_appends_nothing_and_echoes_nothing(self, log, event, says):
        await log.append(read())
        for attempt in (log.append(event), log.append_many([read(), event])):
            with pytest.raises(InvalidAuditEvent) as err:
                await attempt
            assert says in str(err.value) and "nothing appended" in str(err.value)
            for secret in ("jean.dupont", "Jean Dupont", "+33612345678"):
                assert secret not in str(err.value)
        assert (await log.head())[0] == 1
        assert (await log.verify()).ok

    # --- reading ------------------------------------------------------------------------

    async def test_query_by_customer_subject_kind_purpose_and_time(self, log):
        await log.append_many([
            read("app:till", customers=("cus_a", "cus_b")),
            read("app:web", customers=("cus_b",), purpose="marketing"),
            AuditEvent("denied", "app:web", ("web",), "marketing", ("cus_c",)),
            AuditEvent("steward", "marie", ("steward",), None, ("cus_a", "cus_c"),
                       details={"action": "link", "steward_action": 7}),
        ])

        async def ids(**where) -> list[int]:
            return [e.id for e in (await log.query(AuditFilter(**where))).entries]

        assert await ids() == [4, 3, 2, 1]
        assert await ids(customers=("cus_a",)) == [4, 1]
        assert await ids(customers=("cus_b", "cus_c")) == [4, 3, 2, 1]
        assert await ids(customers=("cus_zz",)) == []
        assert await ids(subject="app:web") == [3, 2]
        assert await ids(kinds=("denied", "steward")) == [4, 3]
        assert await ids(purpose="marketing") == [3, 2]
        assert await ids(customers=("cus_b",), subject="app:web", kinds=("read",)) == [2]
        at = (await log.query()).entries[0].at
        assert await ids(since=at) == [4, 3, 2, 1]
        assert await ids(since=at + timedelta(microseconds=1)) == []
        assert await ids(until=at) == []
        assert await ids(until=at + timedelta(seconds=1), since=at - timedelta(days=1)) == [4, 3, 2, 1]

    async def test_paging_newest_first(self, log):
        await fill(log, 25)
        seen, before = [], None
        while True:
            page = await log.query(AuditFilter(customers=("cus_1",), before=before, limit=3))
            seen += [e.id for e in page.entries]
            if page.next_before is None:
                break
            before = page.next_before
        assert seen == [i for i in range(25, 0, -1) if (i - 1) % 3 == 1]
        assert (await log.query(AuditFilter(limit=5))).next_before == 21

    @pytest.mark.parametrize("where, says", [
        (AuditFilter(kinds=("reads",)), "unknown audit kind 'reads'"),
        (AuditFilter(limit=0), "limit"),
        (AuditFilter(limit=5000), "limit"),
        (AuditFilter(before=0), "before"),
        (AuditFilter(since=datetime(2024, 1, 1)), "timezone-aware"),
    ])
    async def test_a_bad_filter_says_what_is_wrong(self, log, where, says):
        with pytest.raises(ValueError, match=says):
            await log.query(where)

    async def test_a_customer_sees_who_read_their_data_but_not_staff_names(self, log):
        await log.append_many([
            read("agent.smith", customers=("cus_a", "cus_b"), purpose="support"),
            AuditEvent("denied", "app:web", ("web",), "marketing", ("cus_a",)),
            AuditEvent("read", "apikey:newsletter", ("marketing",), "marketing", ("cus_a",),
                       ["Customer.emails"], subject_kind="service"),
            AuditEvent("read", "customer:cus_a", ("customer",), "self-service", ("cus_a",),
                       ["Customer.name"]),
            read("agent.jones", customers=("cus_b",)),
        ])
        page = await log.accesses("cus_a", own_subjects={"customer:cus_a"})
        assert [(a.id, a.subject, a.by_you, a.roles, a.purpose) for a in page.accesses] == [
            (4, "customer:cus_a", True, ("customer",), "self-service"),
            (3, "apikey:newsletter", False, ("marketing",), "marketing"),  # an application: named
            (1, None, False, ("till",), "support")]  # reads only: the denied attempt is not there
        assert page.accesses[2].fields == ("Customer.emails", "Customer.name")
        shown = await log.accesses(["cus_a"], show_subjects=True, limit=2)
        assert [a.id for a in shown.accesses] == [4, 3] and shown.next_before == 3
        rest = await log.accesses("cus_a", show_subjects=True, before=shown.next_before)
        assert [a.subject for a in rest.accesses] == ["agent.smith"]

    async def test_an_event_of_a_principal(self, log):
        from gateway.principal import Principal

        principal = Principal("apikey:till-paris", ("till",), shop="paris", purpose="support",
                              kind="service")
        entry = await log.append(AuditEvent.of(principal, "read", ["cus_a"], ["Customer.name"],
                                               operation="customer"))
        assert (entry.subject, entry.roles, entry.purpose, entry.subject_kind, entry.details) == (
            "apikey:till-paris", ("till",), "support", "service", {"operation": "customer"})
        with pytest.raises(InvalidAuditEvent, match="subject_kind"):
            await log.append(AuditEvent("read", "x", subject_kind="robot"))

    # --- verification -------------------------------------------------------------------

    async def test_an_empty_and_an_intact_log_verify(self, log):
        report = await log.verify()
        assert (report.ok, report.entries, report.head_id, report.head_hash) == (True, 0, 0, GENESIS)
        entries = await fill(log, 7)
        report = await log.verify()
        assert report.ok and (report.entries, report.head_id, report.head_hash) == (7, 7, entries[-1].hash)
        assert "7 entries, chain intact" in str(report)

    @pytest.mark.parametrize("statements, broken, says", [
        (["UPDATE audit_entries SET subject = 'mallory' WHERE id = 3"], 3, "was edited"),
        (["UPDATE audit_entries SET purpose = 'marketing' WHERE id = 1"], 1, "was edited"),
        (["UPDATE audit_entries SET details = '{\"n\": 99}' WHERE id = 4"], 4, "was edited"),
        (["UPDATE audit_entries SET kind = 'denied' WHERE id = 2"], 2, "was edited"),
        (["DELETE FROM audit_entries WHERE id = 3"], 3, "is missing: the log goes from entry 2"
                                                        " to entry 4 (deleted)"),
        (["DELETE FROM audit_entries WHERE id = 1"], 1, "is missing"),
        (["DELETE FROM audit_entries WHERE id >= 5"], 5, "the newest entries were deleted"),
        (["UPDATE audit_entries SET id = -id WHERE id IN (3, 4)",
          "UPDATE audit_entries SET id = 4 WHERE id = -3",
          "UPDATE audit_entries SET id = 3 WHERE id = -4"], 3, "moved from another place"),
        (["INSERT INTO audit_entries SELECT 7, at, kind, subject, roles, purpose, customers,"
          " fields, details, subject_kind, prev_hash, hash FROM audit_entries WHERE id = 6"], 7,
         "is past the head"),
        (["UPDATE audit_entries SET subject_kind = 'service' WHERE id = 6"], 6, "was edited"),
    ])
    async def test_tampering_is_found_at_the_first_bad_entry(self, log, statements, broken, says):
        await fill(log, 6)
        await self.tamper(log, *statements)
        report = await log.verify()
        assert not report.ok and report.broken_id == broken
        assert report.problem.startswith(f"entry {broken} ") and says in report.problem

    async def test_a_rewrite_with_fresh_hashes_needs_the_key_or_an_anchor_to_show(self, log):
        entries = await fill(log, 5)
        anchor = (entries[-1].id, entries[-1].hash)
        await self.tamper(log, *self._rewrite(entries, Chain(), subject="mallory", at_id=2))
        # Without a key, whoever can write the database can also recompute the hashes ...
        assert (await log.verify()).ok
        # ... which an anchor noted earlier shows.
        report = await log.verify(anchor=anchor)
        assert report.broken_id == 5 and "differs from the anchor" in report.problem

    async def test_an_anchor_past_the_end_shows_a_truncation_with_the_head_rewritten(self, log):
        entries = await fill(log, 5)
        await self.tamper(log, "DELETE FROM audit_entries WHERE id >= 4",
                          f"UPDATE audit_head SET last_id = 3, last_hash = '{entries[2].hash}'")
        assert (await log.verify()).ok
        report = await log.verify(anchor=(5, entries[4].hash))
        assert report.broken_id == 5 and "of the anchor is not in the log" in report.problem

    async def test_with_a_key_a_rewrite_is_found_without_an_anchor(self, log):
        keyed = self.reopen(log, key=KEY)
        await self.tamper(log, "DELETE FROM audit_head")  # a fresh log for the keyed chain
        async with keyed:
            entries = await fill(keyed, 5)
            assert (await keyed.verify()).ok
            await self.tamper(log, *self._rewrite(entries, Chain(), subject="mallory", at_id=2))
            report = await keyed.verify()
            assert report.broken_id == 2 and "was edited" in report.problem

    @staticmethod
    def _rewrite(entries, chain: Chain, subject: str, at_id: int) -> list[str]:
        """The statements of an attacker who edits one entry and re-seals every later one."""
        import dataclasses

        statements, prev = [], entries[at_id - 2].hash if at_id > 1 else GENESIS
        for entry in entries[at_id - 1:]:
            changed = dataclasses.replace(entry, prev_hash=prev, hash="",
                                          subject=subject if entry.id == at_id else entry.subject)
            prev = chain.seal(changed)
            statements.append(f"UPDATE audit_entries SET subject = '{changed.subject}',"
                              f" prev_hash = '{changed.prev_hash}', hash = '{prev}' WHERE id = {entry.id}")
        statements.append(f"UPDATE audit_head SET last_hash = '{prev}'")
        return statements

    async def test_verify_walks_a_large_log_in_constant_memory(self, log):
        for start in range(0, 12_000, 2_000):
            await log.append_many([
                AuditEvent("read", "app:export", ("finance",), "finance",
                           [f"cus_{start + i}_{k}" for k in range(5)],
                           [f"Customer.field{k}" for k in range(8)]) for i in range(2_000)])
        tracemalloc.start()
        try:
            report = await log.verify()
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert report.ok and report.entries == 12_000
        assert peak < 8 * 2 ** 20, f"verify held {peak / 2 ** 20:.1f} MiB"

    # --- append-only ----------------------------------------------------------------------

    @pytest.mark.parametrize("statement", [
        "UPDATE audit_entries SET subject = 'mallory' WHERE id = 1",
        "DELETE FROM audit_entries WHERE id = 2",
        "DELETE FROM audit_head",
        "UPDATE audit_head SET last_id = 1",
    ])
    async def test_the_database_refuses_updates_and_deletes(self, log, statement):
        await fill(log, 2)
        with pytest.raises(Exception, match="append-only|only moves forward"):
            await self.raw(log, statement)
        assert (await log.verify()).ok and (await log.head())[0] == 2

    # --- keys and lifecycle ---------------------------------------------------------------

    async def test_a_log_is_checked_with_the_key_it_was_written_with(self, log):
        await fill(log, 2)
        with pytest.raises(AuditConfigError, match="written without a key"):
            await self.reopen(log, key=KEY).open()
        async with self.reopen(log) as same:
            assert (await same.verify()).entries == 2

    async def test_a_keyed_log_refuses_no_key_and_another_key(self, log):
        await self.tamper(log, "DELETE FROM audit_head")
        async with self.reopen(log, key=KEY) as keyed:
            entry = (await fill(keyed, 1))[0]
            assert entry.hash != Chain().seal(entry) and entry.hash == Chain(KEY).seal(entry)
        with pytest.raises(AuditConfigError, match="audit.key is not set"):
            await self.reopen(log).open()
        with pytest.raises(AuditConfigError, match="not the key the audit log was written with"):
            await self.reopen(log, key="another-key-of-16-bytes-or-more").open()

    async def test_reopening_keeps_everything_and_methods_refuse_before_open(self, log):
        entries = await fill(log, 3)
        await log.open()  # already open: nothing happens
        other = self.reopen(log)
        with pytest.raises(AuditError, match="await open"):
            await other.append(read())
        async with other:
            assert (await other.query()).entries == entries[::-1]
            await other.append(read())
        assert (await log.verify()).entries == 4
        await other.aclose()  # closing twice is fine

    # --- the command ----------------------------------------------------------------------

    async def test_the_verify_and_list_commands(self, log, tmp_path, capsys):
        await log.append_many([read(customers=("cus_a",)), read("app:web", customers=("cus_b",)),
                               AuditEvent("admin", "root", ("admin",), details={"change": "policy"})])
        config = tmp_path / "panorama.yaml"
        config.write_text(f"sources: {{}}\naudit:\n  store: {self.url(log)}\n")

        def run(*argv: str) -> tuple[int, str, str]:
            code = audit_cli.main(["audit", *argv, "--config", str(config)])
            out, err = capsys.readouterr()
            return code, out, err

        code, out, _ = await asyncio.to_thread(run, "verify")
        head = await log.head()
        assert code == 0 and "3 entries, chain intact" in out and f"--anchor 3:{head[1]}" in out
        assert (await asyncio.to_thread(run, "verify", "--anchor", f"3:{head[1]}"))[0] == 0
        code, out, _ = await asyncio.to_thread(run, "list", "--customer", "cus_b")
        assert code == 0 and out.startswith("#2  ") and "app:web [till]" in out
        assert "fields=Customer.emails(masked),Customer.name" in out and "#1" not in out
        code, out, _ = await asyncio.to_thread(run, "list", "--kind", "admin", "--json")
        assert code == 0 and '"kind":"admin"' in out and '"details":{"change":"policy"}' in out
        code, out, _ = await asyncio.to_thread(run, "list", "--limit", "1", "--since", "1d")
        assert code == 0 and out.splitlines()[-1] == "(more: add --before 3)"
        await self.tamper(log, "UPDATE audit_entries SET subject = 'mallory' WHERE id = 2")
        code, out, err = await asyncio.to_thread(run, "verify")
        assert code == 1 and "TAMPERED: entry 2 " in err and "1 entries before it are intact" in err


# --- SQLite ------------------------------------------------------------------------------

class TestSQLite(AuditContract):
    @pytest.fixture
    async def log(self, tmp_path):
        log = open_audit_log("sqlite:///state/audit.db", base_dir=tmp_path)
        async with log:
            yield log

    def reopen(self, log, key=None):
        return SQLiteAuditLog(log.path, Chain(key))

    def url(self, log):
        return f"sqlite:///{log.path}"

    async def tamper(self, log, *statements):
        with sqlite3.connect(log.path) as db:  # whoever has the file can drop the triggers
            for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'").fetchall():
                db.execute(f'DROP TRIGGER "{name}"')
            for statement in statements:
                db.execute(statement)

    async def raw(self, log, statement):
        with sqlite3.connect(log.path) as db:
            db.execute(statement)

    async def test_the_file_is_created_with_its_directories_in_wal_mode(self, log, tmp_path):
        assert log.path == tmp_path / "state" / "audit.db" and log.path.is_file()
        with sqlite3.connect(log.path) as db:
            assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"

    async def test_an_edited_customer_index_is_found(self, log):
        await fill(log, 3)
        await self.tamper(log, "DELETE FROM audit_customers WHERE entry_id = 2")
        report = await log.verify()
        assert report.broken_id == 2 and "customer search index" in report.problem
        assert [e.id for e in (await log.query(AuditFilter(customers=("cus_1",)))).entries] == []

    async def test_an_unreadable_row_is_found(self, log):
        await fill(log, 3)
        await self.tamper(log, "UPDATE audit_entries SET roles = 'not json' WHERE id = 2")
        report = await log.verify()
        assert report.broken_id == 2 and "cannot be read" in report.problem

    async def test_a_directory_or_an_unwritable_place_is_refused(self, tmp_path):
        with pytest.raises(AuditConfigError, match="is a directory"):
            await SQLiteAuditLog(tmp_path).open()
        (tmp_path / "file").write_text("")
        with pytest.raises(AuditUnavailable, match="writable"):
            await SQLiteAuditLog(tmp_path / "file" / "x.db").open()
        (tmp_path / "junk.db").write_text("not a database, clearly" * 100)
        with pytest.raises(AuditUnavailable, match="not a SQLite database"):
            await SQLiteAuditLog(tmp_path / "junk.db").open()

    async def test_the_commands_say_when_there_is_no_log_or_no_config(self, tmp_path, capsys):
        config = tmp_path / "panorama.yaml"
        config.write_text("sources: {}\n")
        assert await asyncio.to_thread(audit_cli.main, ["audit", "verify", "--config", str(config)]) == 2
        assert f"no audit log at {tmp_path / 'panorama-audit.db'}" in capsys.readouterr().err
        assert not (tmp_path / "panorama-audit.db").exists()  # verify does not create one
        missing = str(tmp_path / "nope.yaml")
        assert await asyncio.to_thread(audit_cli.main, ["audit", "list", "--config", missing]) == 2
        assert "file not found" in capsys.readouterr().err


# --- PostgreSQL --------------------------------------------------------------------------

async def create_database(name: str) -> str:
    """The URL of a test database ``name`` on the local PostgreSQL, created if missing."""
    admin = await asyncpg.connect(host="127.0.0.1", port=5432, user="postgres", database="postgres")
    try:
        if not await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    return f"postgresql://postgres@127.0.0.1:5432/{name}"


async def drop_schema(url: str, schema: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def pg_audit_database() -> str:
    return asyncio.run(create_database(PG_DATABASE))


class TestPostgres(AuditContract):
    @pytest.fixture
    async def log(self, pg_audit_database):
        schema = f"audit_{uuid.uuid4().hex[:12]}"  # a fresh schema per test
        log = open_audit_log(f"{pg_audit_database}?schema={schema}")
        try:
            async with log:
                yield log
        finally:
            await drop_schema(pg_audit_database, schema)

    def reopen(self, log, key=None):
        return PostgresAuditLog(log.dsn, schema=log.schema, chain=Chain(key))

    def url(self, log):
        return f"{log.dsn}?schema={log.schema}"

    async def _run(self, log, statements, replica: bool) -> None:
        conn = await asyncpg.connect(log.dsn)
        try:
            await conn.execute(f'SET search_path = "{log.schema}"')
            if replica:  # a superuser can switch triggers off for the session
                await conn.execute("SET session_replication_role = replica")
            for statement in statements:
                await conn.execute(statement)
        finally:
            await conn.close()

    async def tamper(self, log, *statements):
        await self._run(log, statements, replica=True)

    async def raw(self, log, statement):
        await self._run(log, [statement], replica=False)

    async def test_the_trigger_refuses_update_delete_and_truncate(self, log):
        await fill(log, 2)
        for statement in ("UPDATE audit_entries SET subject = 'x'", "DELETE FROM audit_entries",
                          "TRUNCATE audit_entries", "TRUNCATE audit_head"):
            with pytest.raises(asyncpg.exceptions.RaiseError, match="append-only|moves forward"):
                await self.raw(log, statement)
        assert (await log.verify()).entries == 2

    async def test_the_default_schema_is_panorama_audit(self, pg_audit_database):
        await drop_schema(pg_audit_database, "panorama_audit")
        log = open_audit_log(pg_audit_database)
        assert isinstance(log, PostgresAuditLog) and log.schema == "panorama_audit"
        try:
            async with log:
                await fill(log, 2)
            async with self.reopen(log) as again:
                assert (await again.verify()).entries == 2
        finally:
            await drop_schema(pg_audit_database, "panorama_audit")

    async def test_it_can_share_a_schema_with_the_crosswalk(self, pg_audit_database):
        from gateway.crosswalk import open_crosswalk

        schema = f"shared_{uuid.uuid4().hex[:8]}"
        try:
            async with open_crosswalk(f"{pg_audit_database}?schema={schema}") as crosswalk:
                async with open_audit_log(f"{pg_audit_database}?schema={schema}") as log:
                    await fill(log, 1)
                    assert (await crosswalk.stats())["records"] == 0
                    assert (await log.verify()).entries == 1
        finally:
            await drop_schema(pg_audit_database, schema)

    async def test_unreachable_database_message_hides_the_password(self):
        log = open_audit_log("postgresql://postgres:s3cret-pw@127.0.0.1:1/x")
        with pytest.raises(AuditUnavailable) as err:
            await log.open()
        assert "s3cret-pw" not in str(err.value) and "postgres:***@127.0.0.1:1/x" in str(err.value)
        assert "s3cret-pw" not in repr(log)

    async def test_a_missing_database_is_unavailable(self, pg_audit_database):
        log = open_audit_log(pg_audit_database.replace(PG_DATABASE, "panorama_no_such_db"))
        with pytest.raises(AuditUnavailable, match="panorama_no_such_db"):
            await log.open()


# --- chain, URLs, config -----------------------------------------------------------------

def test_the_hash_covers_every_part_of_an_entry_in_a_canonical_form():
    from gateway.audit.events import check, entry, with_hash

    at = datetime(2024, 5, 2, 12, 30, tzinfo=UTC)
    base = entry(check(read(b=1, a=[1, "x"])), 1, at, GENESIS)
    text = canonical(base)
    assert text.startswith(b'{"at":"2024-05-02T12:30:00.000000Z","customers":["cus_a"]')
    assert b'"details":{"a":[1,"x"],"b":1}' in text  # keys sorted, compact
    import dataclasses
    for change in ({"id": 2}, {"at": at + timedelta(microseconds=1)}, {"kind": "denied"},
                   {"subject": "y"}, {"roles": ()}, {"purpose": None}, {"customers": ()},
                   {"fields": ()}, {"details": {}}, {"subject_kind": "service"},
                   {"prev_hash": "1" * 64}):
        assert Chain().seal(dataclasses.replace(base, **change)) != Chain().seal(base), change
    sealed = with_hash(base, Chain().seal(base))
    assert Chain().seal(sealed) == sealed.hash  # the hash is not part of what it covers


@pytest.mark.parametrize("key", [b"", "   ", "short-key", b"fifteen-bytes!!"])
def test_an_empty_or_short_key_is_refused_with_the_fix(key):
    with pytest.raises(AuditConfigError, match="audit.key") as err:
        Chain(key)
    assert "secrets.token_urlsafe(32)" in str(err.value)
    assert repr(Chain(KEY)) == "Chain(mode='hmac-sha256')" and KEY not in repr(Chain(KEY))


@pytest.mark.parametrize("url, says", [
    ("mysql://root:s3cret-pw@db/audit", "unknown audit log URL scheme 'mysql'; known: postgres,"
                                        " postgresql, sqlite"),
    ("host=db password=s3cret-pw", "is not a URL"),
    ("sqlite://me:s3cret-pw@host/x.db", "no host"),
    ("sqlite:///:memory:", "outlive"),
    ("postgresql://u:s3cret-pw@db/x?schema=Bad-Name", "schema 'Bad-Name'"),
    (None, "is not a URL"),
])
def test_url_errors_say_what_is_supported_and_never_show_a_password(url, says):
    with pytest.raises(AuditConfigError) as err:
        open_audit_log(url)
    assert says in str(err.value) and "s3cret-pw" not in str(err.value)
    assert isinstance(err.value, ValueError)


def test_sqlite_urls_are_relative_to_the_config_directory_or_absolute(tmp_path):
    log = open_audit_log("sqlite:///panorama-audit.db", base_dir=tmp_path / "conf")
    assert isinstance(log, SQLiteAuditLog) and log.path == tmp_path / "conf" / "panorama-audit.db"
    assert open_audit_log(f"sqlite:///{tmp_path}/abs.db", base_dir="/elsewhere").path == tmp_path / "abs.db"
    assert audit_location("sqlite:///x%20y.db", tmp_path).path == tmp_path / "x y.db"
    assert open_audit_log("sqlite:///x.db").path == Path.cwd() / "x.db"


def test_the_audit_section_defaults_to_a_sqlite_file_next_to_the_config(tmp_path):
    config, problems = parse_audit_section(None, tmp_path, {})
    assert problems == [] and config.key is None and not config.show_subjects_to_customers
    assert audit_location(config.store, config.base_dir).path == tmp_path / "panorama-audit.db"


def test_the_audit_section_resolves_references(tmp_path):
    doc = {"store": "${env:AUDIT_URL}", "key": "${env:AUDIT_KEY}", "show_subjects_to_customers": True}
    config, problems = parse_audit_section(doc, tmp_path, {"AUDIT_URL": PG_URL, "AUDIT_KEY": KEY})
    assert problems == [] and config.store == PG_URL and config.key == KEY
    assert config.show_subjects_to_customers and KEY not in repr(config)


@pytest.mark.parametrize("doc, where, says", [
    ("sqlite:///x.db", "audit", "expected a mapping"),
    ({"stor": "sqlite:///x.db"}, "audit.stor", "unknown key; allowed: store, key"),
    ({"store": "mysql://db/x"}, "audit.store", "unknown audit log URL scheme"),
    ({"store": "${env:NOPE}"}, "audit.store", "environment variable NOPE is not set"),
    ({"key": "an-inline-key-of-more-than-16-bytes"}, "audit.key", "written inline"),
    ({"key": "${env:SHORT}"}, "audit.key", "too short"),
    ({"show_subjects_to_customers": "yes"}, "audit.show_subjects_to_customers", "true or false"),
])
def test_audit_section_problems_name_the_place_and_the_fix(tmp_path, doc, where, says):
    _, problems = parse_audit_section(doc, tmp_path, {"SHORT": "short"})
    assert [p[0] for p in problems] == [where]
    assert says in problems[0][1] and "an-inline-key" not in problems[0][1]


def test_load_audit_config_reads_the_section_alone(tmp_path):
    path = tmp_path / "panorama.yaml"
    path.write_text("sources: {broken: 1}\naudit:\n  store: sqlite:///logs/audit.db\n")
    assert load_audit_config(path, {}).store == "sqlite:///logs/audit.db"
    path.write_text("audit:\n  key: inline-key-of-more-than-16-bytes\n  colour: red\n")
    with pytest.raises(AuditConfigError) as err:
        load_audit_config(path, {})
    assert "2 problem(s)" in str(err.value) and "audit.colour" in str(err.value)
    path.write_text("audit: [\n")
    with pytest.raises(AuditConfigError, match="YAML"):
        load_audit_config(path, {})


def test_times_for_the_list_command():
    now = datetime(2024, 5, 10, 12, 0, tzinfo=UTC)
    assert audit_cli.parse_time("7d", now) == datetime(2024, 5, 3, 12, 0, tzinfo=UTC)
    assert audit_cli.parse_time("30m", now) == datetime(2024, 5, 10, 11, 30, tzinfo=UTC)
    assert audit_cli.parse_time("2024-05-01") == datetime(2024, 5, 1, tzinfo=UTC)
    assert audit_cli.parse_time("2024-05-01T14:30+02:00") == datetime(2024, 5, 1, 12, 30, tzinfo=UTC)
    with pytest.raises(Exception, match="is not a time"):
        audit_cli.parse_time("last tuesday")
