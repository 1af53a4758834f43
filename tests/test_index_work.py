"""A whole index run resolves component by component: the same answer as all at once.

The demo world (three SQLite shops and the CRM on loopback) is indexed with batches of a few
records, so that hundreds of batches each resolve their components apart, and compared with
``Matcher.resolve`` over every record in memory.
"""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest

from gateway.config import load_config
from gateway.crosswalk import KeyHasher, open_crosswalk
from gateway.demo.world import build_world
from gateway.index_work import WorkArea
from gateway.indexer import Indexer, identity_fields, read_records
from gateway.matching import Matcher
from gateway.sources import SourceSet
from tests.servers import running_crm


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    folder = tmp_path_factory.mktemp("world")
    world = build_world(folder, seed=11, customers=400, crm_url="${env:PANORAMA_TEST_CRM_URL}")
    token = secrets.token_urlsafe(16)
    with running_crm(world.crm_seed, token=token) as (url, _):
        environ = {"PANORAMA_DEMO_CRM_TOKEN": token, "PANORAMA_TEST_CRM_URL": url}
        yield load_config(world.config_path, environ)


async def index(config, batch_size: int, work_dir: Path, **run) -> dict:
    sources = SourceSet.from_config(config)
    try:
        async with open_crosswalk(config.identity.store, config.identity.base_dir) as crosswalk:
            indexer = Indexer(sources, crosswalk, Matcher(config.identity.rules),
                              KeyHasher(config.identity.secret), work_dir=work_dir)
            indexer.batch_size = batch_size
            report = await indexer.run(**run)
            members = {m.ref: m async for m in crosswalk.all_members()}
    finally:
        await sources.aclose()
    return {"report": report, "members": members}


async def every_record(config) -> list:
    sources = SourceSet.from_config(config)
    try:
        out = []
        for source in sources:
            fields = identity_fields(source.config.customer.entity.fields)
            async for records in read_records(source, None, fields):
                out.extend(records)
        return out
    finally:
        await sources.aclose()


def partition(groups) -> set[frozenset]:
    return {frozenset(g) for g in groups}


async def test_small_batches_resolve_like_everything_at_once(world, tmp_path):
    records = await every_record(world)
    matcher = Matcher(world.identity.rules)
    expected = partition([r.ref for r in c.records] for c in matcher.resolve(records))
    assert len(expected) < len(records) - 100  # the world links plenty of records

    work = tmp_path / "work"
    work.mkdir()
    first = await index(world, 7, work, full=True)
    by_id: dict[str, set] = {}
    for ref, member in first["members"].items():
        by_id.setdefault(member.global_id, set()).add(ref)
    assert partition(by_id.values()) == expected
    assert first["report"].customers == len(expected)
    assert not any(work.iterdir())  # the scratch file is gone with its directory

    # Re-indexing in other batch sizes changes no id and no evidence.
    again = await index(world, 5000, work, full=True)
    assert again["members"] == first["members"]
    assert again["report"].redirects == 0


def test_a_component_is_never_split_across_batches(tmp_path):
    from gateway.records import CustomerRecord

    def person(key: str) -> CustomerRecord:
        return CustomerRecord("s", key, "PERSON", "Ada", "Lovelace", None, None, None, (), (), (),
                              ())

    hasher = KeyHasher("x" * 32)
    matcher = Matcher()
    with WorkArea(tmp_path) as work:
        records = [person(str(i)) for i in range(10)]
        work.add(records, [matcher.signature(r) for r in records], hasher, {})
        work.find_components(matcher.max_block_size)
        batches = [[n for n, _, _ in batch] for batch in work.batches(3)]
    # Ten namesakes share their blocks: one component, so one batch however small the size.
    assert batches == [list(range(10))]
