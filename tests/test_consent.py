"""Consent: the store (one contract suite, run against SQLite and PostgreSQL), the sources'
opt-out rules, the config section and the corrections command.

:class:`ConsentContract` holds every test of the contract; a backend's class provides a
``store`` fixture (an opened, empty store), ``reopen`` (a second store on the same place, as a
second gateway replica would open it) and ``queries`` (a counter of the statements the store
sends).
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from gateway import audit_cli
from gateway.consent import (
    ConsentConfigError,
    ConsentDecision,
    ConsentError,
    ConsentStore,
    ConsentUnavailable,
    CorrectionNotFound,
    CorrectionRequest,
    InvalidConsentRecord,
    OptOutRule,
    PostgresConsentStore,
    SourceValues,
    SQLiteConsentStore,
    flag,
    load_consent_config,
    objecting_customers,
    objections_from_records,
    open_consent_store,
    parse_consent_section,
    route_correction,
)
from tests.test_audit import create_database, drop_schema

PG_DATABASE = "panorama_test_consent"
CONTACTS = {"crm": "crm-team@example.com", "paris": "https://support.example.com/paris/new"}


def objects(customer: str, purpose: str = "marketing", actor: str | None = None,
            source: str = "self-service") -> ConsentDecision:
    return ConsentDecision(customer, purpose, True, actor or f"customer:{customer}", source)


def withdraws(customer: str, purpose: str = "marketing") -> ConsentDecision:
    return ConsentDecision(customer, purpose, False, f"customer:{customer}", "self-service")


def moved(customer: str = "cus_a", source: str = "paris") -> CorrectionRequest:
    return CorrectionRequest(customer, "addresses", source, "12 rue des Lilas, 75011 Paris",
                             f"customer:{customer}", "I moved in March", record="1042")


class ConsentContract:
    def reopen(self, store: ConsentStore) -> ConsentStore:
        raise NotImplementedError

    def queries(self, store: ConsentStore) -> contextlib.AbstractContextManager[list[str]]:
        raise NotImplementedError

    # --- decisions ----------------------------------------------------------------------

    async def test_the_latest_decision_wins_and_every_one_is_kept(self, store):
        first = await store.record(objects("cus_a"))
        assert first.id is not None and first.at.tzinfo is UTC
        assert abs(datetime.now(UTC) - first.at) < timedelta(seconds=5)
        assert await store.objections_for(["cus_a"], "marketing") == {"cus_a"}
        second = await store.record(withdraws("cus_a"))
        assert second.id > first.id
        assert await store.objections_for(["cus_a"], "marketing") == set()
        third = await store.record(objects("cus_a", actor="agent.smith", source="support"))
        assert await store.objections_for(["cus_a"], "marketing") == {"cus_a"}
        assert await store.history("cus_a") == [third, second, first]
        assert await store.history("cus_a", limit=1) == [third]
        assert (third.actor, third.source) == ("agent.smith", "support")

    async def test_purposes_and_customers_are_separate(self, store):
        await store.record_many([objects("cus_a", "marketing"), objects("cus_a", "profiling"),
                                 objects("cus_b", "profiling"), withdraws("cus_a", "profiling")])
        page = ["cus_a", "cus_b", "cus_c"]
        assert await store.objections_for(page, "marketing") == {"cus_a"}
        assert await store.objections_for(page, "profiling") == {"cus_b"}
        assert await store.objections_for(page, "support") == set()
        assert await store.objectors("profiling") == {"cus_b"}
        current = await store.current("cus_a")
        assert {p: d.objected for p, d in current.items()} == {"marketing": True, "profiling": False}
        assert [d.purpose for d in await store.history("cus_a", "profiling")] == ["profiling"] * 2
        assert await store.current("cus_zz") == {}
        assert await store.objections_for([], "marketing") == set()
        assert await store.decided() == {"cus_a", "cus_b"}

    async def test_a_page_is_one_query_and_nothing_is_cached(self, store):
        await store.record_many([objects(f"cus_{i}") for i in range(0, 100, 7)])
        page = [f"cus_{i}" for i in range(100)]
        with self.queries(store) as sent:
            found = await store.objections_for(page + page[:10], "marketing")
        assert found == {f"cus_{i}" for i in range(0, 100, 7)} and len(sent) == 1
        # Another replica's change is seen by the very next lookup.
        async with self.reopen(store) as replica:
            await replica.record(withdraws("cus_7"))
            await replica.record(objects("cus_8"))
        found = await store.objections_for(page, "marketing")
        assert "cus_7" not in found and "cus_8" in found

    async def test_a_large_lookup_is_batched(self, store):
        await store.record_many([objects(f"cus_{i}") for i in range(0, 12_000, 1_000)])
        found = await store.objections_for((f"cus_{i}" for i in range(12_000)), "marketing")
        assert found == {f"cus_{i}" for i in range(0, 12_000, 1_000)}

    async def test_concurrent_decisions_from_two_replicas(self, store):
        async with self.reopen(store) as replica:
            await asyncio.gather(*(s.record(objects(f"cus_{i}") if i % 2 else withdraws(f"cus_{i}"))
                                   for i in range(40) for s in (store, replica)))
        assert await store.objectors("marketing") == {f"cus_{i}" for i in range(1, 40, 2)}
        assert len(await store.history("cus_3")) == 2

    @pytest.mark.parametrize("bad, says", [
        (ConsentDecision("jean.dupont@example.com", "marketing", True, "x", "support"), "global id"),
        (ConsentDecision("cus_a", "Marketing", True, "x", "support"), "purpose"),
        (ConsentDecision("cus_a", "direct marketing", True, "x", "support"), "purpose"),
        (ConsentDecision("cus_a", "marketing", "yes", "x", "support"), "objected"),  # type: ignore[arg-type]
        (ConsentDecision("cus_a", "marketing", True, "", "support"), "actor"),
        (ConsentDecision("cus_a", "marketing", True, "x", "phone call"), "source"),
    ])
    async def test_a_bad_decision_records_nothing(self, store, bad, says):
        await store.record(objects("cus_b"))
        with pytest.raises(InvalidConsentRecord, match=says) as err:
            await store.record_many([objects("cus_a"), bad])
        assert "jean.dupont" not in str(err.value) and "nothing written" in str(err.value)
        assert await store.objectors("marketing") == {"cus_b"}

    async def test_a_bad_purpose_in_a_lookup_is_refused(self, store):
        with pytest.raises(InvalidConsentRecord, match="purpose"):
            await store.objections_for(["cus_a"], "Direct Marketing")

    async def test_after_a_merge_the_latest_decision_of_either_id_wins(self, store):
        await store.record_many([objects("cus_old"), objects("cus_old", "profiling"),
                                 objects("cus_new", "profiling"), withdraws("cus_new", "profiling"),
                                 withdraws("cus_x")])
        copied = await store.carry_over({"cus_old": "cus_new", "cus_x": "cus_y"}, "indexer")
        # marketing: the retired id's objection is newer than anything of the survivor's;
        # profiling: the survivor withdrew after the retired id objected.
        assert [(d.customer, d.purpose, d.objected, d.source) for d in copied] == [
            ("cus_new", "marketing", True, "merge")]
        assert await store.objections_for(["cus_new"], "marketing") == {"cus_new"}
        assert await store.objections_for(["cus_new"], "profiling") == set()
        assert await store.carry_over({"cus_old": "cus_new"}, "indexer") == []  # idempotent
        await store.record(withdraws("cus_new"))
        assert await store.carry_over({"cus_old": "cus_new"}, "indexer") == []
        assert await store.objections_for(["cus_new"], "marketing") == set()
        assert await store.carry_over({}, "indexer") == []

    async def test_objecting_customers_joins_the_store_and_the_sources(self, store):
        await store.record_many([objects("cus_a"), objects("cus_b"), withdraws("cus_b")])
        rules = {"crm": (OptOutRule("marketing_opt_out", ("marketing",)),)}
        records = [SourceValues("cus_c", "crm", {"marketing_opt_out": "true"}),
                   SourceValues("cus_b", "crm", {"marketing_opt_out": False}),
                   SourceValues("cus_zz", "crm", {"marketing_opt_out": True})]  # not on the page
        page = ["cus_a", "cus_b", "cus_c", "cus_d"]
        assert await objecting_customers(store, "marketing", page, records, rules) == {"cus_a", "cus_c"}
        assert await objecting_customers(store, "marketing", page) == {"cus_a"}
        # A withdrawal in Panorama does not lift a source's opt-out: the strictest wins.
        await store.record(withdraws("cus_c"))
        assert "cus_c" in await objecting_customers(store, "marketing", page, records, rules)
        assert await objecting_customers(store, "profiling", page, records, rules) == set()

    # --- correction requests ------------------------------------------------------------

    async def test_a_correction_is_routed_to_the_owning_source_contact(self, store):
        stored = await store.add_correction(moved(), CONTACTS)
        assert (stored.status, stored.routed_to, stored.record) == (
            "routed", "https://support.example.com/paris/new", "1042")
        assert stored.requested == "12 rue des Lilas, 75011 Paris"  # kept here, for the source
        assert stored.created_at == stored.updated_at and stored.updated_by == "customer:cus_a"
        assert await store.correction(stored.id) == stored
        unrouted = await store.add_correction(moved("cus_b", "berlin"), CONTACTS)
        assert (unrouted.status, unrouted.routed_to) == ("unrouted", None)
        default = await store.add_correction(moved("cus_b", "berlin"),
                                             {**CONTACTS, "default": "dpo@example.com"})
        assert (default.status, default.routed_to) == ("routed", "dpo@example.com")
        assert await store.correction(10_000) is None

    async def test_corrections_are_listed_newest_first_and_closed(self, store):
        made = [await store.add_correction(moved(c, s), CONTACTS)
                for c, s in (("cus_a", "paris"), ("cus_b", "crm"), ("cus_a", "crm"), ("cus_c", "lyon"))]
        ids = [r.id for r in made]
        assert [r.id for r in await store.corrections()] == ids[::-1]
        assert [r.id for r in await store.corrections(status="routed")] == ids[2::-1]
        assert [r.id for r in await store.corrections(status="unrouted")] == [ids[3]]
        assert [r.id for r in await store.corrections(customer="cus_a")] == [ids[2], ids[0]]
        assert [r.id for r in await store.corrections(source="crm", customer="cus_b")] == [ids[1]]
        assert [r.id for r in await store.corrections(before=ids[2], limit=1)] == [ids[1]]
        done = await store.set_correction_status(ids[1], "done", "crm-team")
        assert (done.status, done.updated_by) == ("done", "crm-team")
        assert done.updated_at > done.created_at and done.routed_to == made[1].routed_to
        assert [r.id for r in await store.corrections(status="done")] == [ids[1]]
        with pytest.raises(CorrectionNotFound, match="10000"):
            await store.set_correction_status(10_000, "done", "crm-team")
        with pytest.raises(InvalidConsentRecord, match="unknown correction status 'closed'"):
            await store.set_correction_status(ids[0], "closed", "crm-team")
        with pytest.raises(InvalidConsentRecord, match="actor"):
            await store.set_correction_status(ids[0], "done", "")
        with pytest.raises(InvalidConsentRecord, match="status"):
            await store.corrections(status="open")

    @pytest.mark.parametrize("change, says", [
        ({"customer": "jean@example.com"}, "global id"),
        ({"field": "home address"}, "field path"),
        ({"source": "Paris Shop"}, "source"),
        ({"requested": "  "}, "requested"),
        ({"requested": "x" * 2_001}, "requested"),
        ({"message": "x" * 4_001}, "message"),
        ({"requested_by": ""}, "requested_by"),
        ({"record": ""}, "record"),
    ])
    async def test_a_bad_correction_request_records_nothing(self, store, change, says):
        import dataclasses

        with pytest.raises(InvalidConsentRecord, match=says) as err:
            await store.add_correction(dataclasses.replace(moved(), **change), CONTACTS)
        assert "jean@" not in str(err.value) and "Lilas" not in str(err.value)
        assert await store.corrections() == []

    # --- lifecycle ----------------------------------------------------------------------

    async def test_reopening_keeps_everything_and_methods_refuse_before_open(self, store):
        await store.record(objects("cus_a"))
        await store.add_correction(moved(), CONTACTS)
        await store.open()  # already open: nothing happens
        other = self.reopen(store)
        with pytest.raises(ConsentError, match="await open"):
            await other.objections_for(["cus_a"], "marketing")
        async with other:
            assert await other.objectors("marketing") == {"cus_a"}
            assert len(await other.corrections()) == 1
        await other.aclose()

    async def test_the_corrections_command_lists_the_outbox(self, store, tmp_path, capsys):
        await store.add_correction(moved(), CONTACTS)
        await store.add_correction(moved("cus_b", "berlin"), CONTACTS)
        config = tmp_path / "panorama.yaml"
        config.write_text(f"sources: {{paris: {{}}, berlin: {{}}}}\nconsent:\n  store: {self.url(store)}\n")

        def run(*argv: str) -> tuple[int, str]:
            code = audit_cli.main(["audit", "corrections", "--config", str(config), *argv])
            return code, capsys.readouterr().out

        code, out = await asyncio.to_thread(run)
        assert code == 0 and len(out.splitlines()) == 2
        assert "unrouted  cus_b  berlin.addresses  -> (no contact configured)" in out
        code, out = await asyncio.to_thread(run, "--status", "routed", "--json")
        assert code == 0 and '"routed_to":"https://support.example.com/paris/new"' in out
        assert '"requested":"12 rue des Lilas, 75011 Paris"' in out

    def url(self, store: ConsentStore) -> str:
        raise NotImplementedError


# --- SQLite ------------------------------------------------------------------------------

@contextlib.contextmanager
def _counting(db, method: str):
    sent: list[str] = []
    original = getattr(db, method)

    async def counted(sql, *args, **kwargs):
        sent.append(sql)
        return await original(sql, *args, **kwargs)

    setattr(db, method, counted)
    try:
        yield sent
    finally:
        setattr(db, method, original)


class TestSQLite(ConsentContract):
    @pytest.fixture
    async def store(self, tmp_path):
        store = open_consent_store("sqlite:///state/consent.db", base_dir=tmp_path)
        async with store:
            yield store

    def reopen(self, store):
        return SQLiteConsentStore(store.path)

    def queries(self, store):
        return _counting(store.db, "read")

    def url(self, store):
        return f"sqlite:///{store.path}"

    async def test_the_file_is_created_with_its_directories(self, store, tmp_path):
        assert store.path == tmp_path / "state" / "consent.db" and store.path.is_file()

    async def test_it_can_share_a_file_with_the_audit_log(self, tmp_path):
        from gateway.audit import AuditEvent, open_audit_log

        async with open_consent_store("sqlite:///one.db", tmp_path) as store:
            async with open_audit_log("sqlite:///one.db", tmp_path) as log:
                await store.record(objects("cus_a"))
                await log.append(AuditEvent("consent", "customer:cus_a", customers=["cus_a"],
                                            details={"purpose": "marketing", "objected": True}))
                assert (await log.verify()).ok
                assert await store.objectors("marketing") == {"cus_a"}

    async def test_a_directory_or_a_junk_file_is_refused(self, tmp_path):
        with pytest.raises(ConsentConfigError, match="is a directory"):
            await SQLiteConsentStore(tmp_path).open()
        (tmp_path / "junk.db").write_text("not a database, clearly" * 100)
        with pytest.raises(ConsentUnavailable, match="not a SQLite database"):
            await SQLiteConsentStore(tmp_path / "junk.db").open()


# --- PostgreSQL --------------------------------------------------------------------------

@pytest.fixture(scope="session")
def pg_consent_database() -> str:
    return asyncio.run(create_database(PG_DATABASE))


class TestPostgres(ConsentContract):
    @pytest.fixture
    async def store(self, pg_consent_database):
        schema = f"consent_{uuid.uuid4().hex[:12]}"
        store = open_consent_store(f"{pg_consent_database}?schema={schema}")
        try:
            async with store:
                yield store
        finally:
            await drop_schema(pg_consent_database, schema)

    def reopen(self, store):
        return PostgresConsentStore(store.dsn, schema=store.schema)

    def queries(self, store):
        return _counting(store.db, "fetch")

    def url(self, store):
        return f"{store.dsn}?schema={store.schema}"

    async def test_the_default_schema_is_panorama_consent(self, pg_consent_database):
        await drop_schema(pg_consent_database, "panorama_consent")
        store = open_consent_store(pg_consent_database)
        assert isinstance(store, PostgresConsentStore) and store.schema == "panorama_consent"
        try:
            async with store:
                await store.record(objects("cus_a"))
            async with self.reopen(store) as again:
                assert await again.objectors("marketing") == {"cus_a"}
        finally:
            await drop_schema(pg_consent_database, "panorama_consent")

    async def test_unreachable_database_message_hides_the_password(self):
        store = open_consent_store("postgresql://postgres:s3cret-pw@127.0.0.1:1/x")
        with pytest.raises(ConsentUnavailable) as err:
            await store.open()
        assert "s3cret-pw" not in str(err.value) and "postgres:***@127.0.0.1:1/x" in str(err.value)
        assert "s3cret-pw" not in repr(store)


# --- the sources' opt-out fields ---------------------------------------------------------

@pytest.mark.parametrize("value, expected", [
    (True, "true"), ("true", "true"), (" Yes ", "true"), ("Y", "true"), ("on", "true"), (1, "true"),
    ("1", "true"), (False, "false"), ("FALSE", "false"), ("no", "false"), (0, "false"), ("0", "false"),
    (None, "null"), ("subscribed", "subscribed"), (2, "2"),
])
def test_source_values_are_compared_as_flags(value, expected):
    assert flag(value) == expected


def test_objections_from_records_per_source_and_purpose():
    rules = {
        "crm": (OptOutRule("hs_email_optout", ("marketing",)),
                OptOutRule("marketing_opt_out", ("marketing", "profiling"))),
        "paris": (OptOutRule("newsletter", ("marketing",), frozenset({"false", "null"})),),
    }
    records = [
        SourceValues("cus_1", "crm", {"hs_email_optout": "true", "marketing_opt_out": "false"}),
        SourceValues("cus_2", "crm", {"marketing_opt_out": True}),
        SourceValues("cus_3", "crm", {"hs_email_optout": None}),  # not set: no objection
        SourceValues(("paris", "17"), "paris", {"newsletter": 0}),
        ("cus_5", "paris", {"newsletter": 1}),
        ("cus_6", "paris", {}),  # the column is NULL: objects, as configured
        ("cus_7", "lyon", {"newsletter": 0}),  # a source without rules says nothing
    ]
    assert objections_from_records(records, rules) == {
        ("cus_1", "marketing"), ("cus_2", "marketing"), ("cus_2", "profiling"),
        (("paris", "17"), "marketing"), ("cus_6", "marketing")}
    assert objections_from_records(records, {}) == set()


def test_corrections_go_to_the_source_contact_or_the_default():
    assert route_correction("crm", CONTACTS) == "crm-team@example.com"
    assert route_correction("lyon", CONTACTS) is None
    assert route_correction("lyon", {**CONTACTS, "default": "mailto:dpo@example.com"}) == (
        "mailto:dpo@example.com")


# --- the consent section -----------------------------------------------------------------

SOURCES = ["crm", "paris"]


def test_the_consent_section_as_documented(tmp_path):
    doc = {"store": "${env:CONSENT_URL}",
           "sources": {"crm": [{"field": "hs_email_optout", "purposes": ["marketing"]},
                               {"field": "marketing_opt_out", "purposes": ["marketing", "profiling"]}],
                       "paris": {"field": "newsletter", "objects_when": [0, None],
                                 "purposes": ["marketing"]}},
           "contacts": {"crm": "crm-team@example.com", "default": "https://privacy.example.com/form"}}
    url = "postgresql://postgres@127.0.0.1:5432/x"
    config, problems = parse_consent_section(doc, tmp_path, {"CONSENT_URL": url}, SOURCES)
    assert problems == [] and config.store == url
    assert config.rules["paris"] == (OptOutRule("newsletter", ("marketing",), frozenset({"false", "null"})),)
    assert config.rules["crm"][1].purposes == ("marketing", "profiling")
    assert config.fields_by_source() == {"crm": ("hs_email_optout", "marketing_opt_out"),
                                         "paris": ("newsletter",)}
    assert config.contacts == doc["contacts"]


def test_without_a_consent_section_the_store_is_next_to_the_config(tmp_path):
    config, problems = parse_consent_section(None, tmp_path, {}, SOURCES)
    assert problems == [] and config.rules == {} and config.contacts == {}
    assert open_consent_store(config.store, config.base_dir).path == tmp_path / "panorama-consent.db"


@pytest.mark.parametrize("doc, where, says", [
    ([], "consent", "expected a mapping"),
    ({"rules": {}}, "consent.rules", "unknown key; allowed: store, sources, contacts"),
    ({"store": "mysql://db/x"}, "consent.store", "unknown consent store URL scheme"),
    ({"sources": {"lyon": {"field": "x", "purposes": ["marketing"]}}}, "consent.sources.lyon",
     "unknown source; configured: crm, paris"),
    ({"sources": {"crm": {"purposes": ["marketing"]}}}, "consent.sources.crm.field", "column or CRM"),
    ({"sources": {"crm": [{"field": "x", "purposes": "marketing"}]}}, "consent.sources.crm[0].purposes",
     "a list of purposes"),
    ({"sources": {"crm": {"field": "x", "purposes": ["Direct Marketing"]}}},
     "consent.sources.crm.purposes", "lower-case"),
    ({"sources": {"crm": {"field": "x", "purposes": ["m"], "objects_when": 1}}},
     "consent.sources.crm.objects_when", "values that mean the customer objects"),
    ({"sources": {"crm": {"field": "x", "purposes": ["m"], "when": [1]}}},
     "consent.sources.crm.when", "unknown key"),
    ({"sources": {"crm": "marketing_opt_out"}}, "consent.sources.crm", "expected a rule"),
    ({"contacts": {"crm": "call Bob"}}, "consent.contacts.crm", "e-mail address"),
    ({"contacts": {"lyon": "a@b.fr"}}, "consent.contacts.lyon", "unknown source"),
])
def test_consent_section_problems_name_the_place_and_the_fix(tmp_path, doc, where, says):
    _, problems = parse_consent_section(doc, tmp_path, {}, SOURCES)
    assert [p[0] for p in problems] == [where]
    assert says in problems[0][1]


def test_load_consent_config_reads_the_section_and_the_source_names(tmp_path):
    path = tmp_path / "panorama.yaml"
    path.write_text("sources:\n  crm: {kind: crm}\nconsent:\n  sources:\n    crm:\n"
                    "      field: marketing_opt_out\n      purposes: [marketing]\n")
    assert load_consent_config(path, {}).fields_by_source() == {"crm": ("marketing_opt_out",)}
    path.write_text("sources:\n  crm: {kind: crm}\nconsent:\n  contacts: {paris: a@b.fr}\n")
    with pytest.raises(ConsentConfigError, match="consent.contacts.paris: unknown source"):
        load_consent_config(path, {})


@pytest.mark.parametrize("url, says", [
    ("mysql://db/x", "unknown consent store URL scheme 'mysql'"),
    ("sqlite://host/x.db", "no host"),
    ("sqlite:///:memory:", "outlive"),
    ("consent.db", "is not a URL"),
])
def test_consent_store_url_errors(url, says):
    with pytest.raises(ConsentConfigError, match=says):
        open_consent_store(url)
