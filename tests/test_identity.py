"""Deterministic identity: clusters, stable ids, evidence."""

from __future__ import annotations

import random

from gateway.identity import cluster, decode_id, encode_id, match_keys
from gateway.records import CardValue, ContactValue, CustomerRecord

RANK = {"paris": 0, "london": 1, "crm": 2}


def rec(source, key, emails=(), phones=(), cards=()):
    return CustomerRecord(
        source=source, key=str(key), kind="PERSON", given_name=None, family_name=None,
        full_name=None, legal_name=None, birth_date=None,
        emails=tuple(ContactValue(e, None) for e in emails),
        phones=tuple(ContactValue(p, None, valid=p.startswith("+")) for p in phones),
        addresses=(), cards=tuple(CardValue(c, None, None) for c in cards), native_key=key)


def test_keys_are_normalized():
    r = rec("paris", 1, emails=[" Jean@Example.COM "], phones=["+33612345678", "garbage"],
            cards=["ab-12 34"])
    assert match_keys(r) == {"email:jean@example.com", "phone:+33612345678", "card:AB1234"}


def test_links_are_transitive_and_ids_come_from_the_first_record_in_source_order():
    records = [
        rec("crm", 7, emails=["a@x.fr"]),
        rec("london", "LDN-1", emails=["b@y.uk"], phones=["+33612345678"]),
        rec("paris", 10, emails=["a@x.fr"], phones=["+33612345678"]),
        rec("paris", 9, emails=["solo@x.fr"]),
    ]
    for _ in range(5):
        random.shuffle(records)
        clusters = cluster(records, RANK)
        assert [[r.ref for r in c.records] for c in clusters] == [
            [("paris", "9")], [("paris", "10"), ("london", "LDN-1"), ("crm", "7")]]
        assert clusters[1].id == encode_id("paris", "10")
        assert clusters[1].evidence[("london", "LDN-1")] == ("phone",)
        assert clusters[1].evidence[("paris", "10")] == ("email", "phone")
        assert clusters[0].evidence[("paris", "9")] == ()


def test_numeric_keys_sort_as_numbers():
    clusters = cluster([rec("paris", 10, emails=["a@x"]), rec("paris", 9, emails=["a@x"])], RANK)
    assert clusters[0].first.key == "9"


def test_invalid_phones_do_not_link():
    clusters = cluster([rec("paris", 1, phones=["0000"]), rec("london", 2, phones=["0000"])], RANK)
    assert len(clusters) == 2


def test_ids_round_trip_and_foreign_ids_are_rejected():
    gid = encode_id("london", "LDN-000123")
    assert gid.startswith("cus_") and decode_id(gid) == ("london", "LDN-000123")
    for bad in ("", "cus_", "cus_!!!", "42", "cus_' OR 1=1 --", encode_id("x", "y")[:-3]):
        assert decode_id(bad) is None or decode_id(bad)[0] != "london"


def test_indexed_customers_keep_their_records_and_only_unindexed_ones_attach():
    a = rec("paris", 1, emails=["x@x"])
    b = rec("london", 2, emails=["x@x"])          # indexed apart from a (a steward said so)
    c = rec("crm", 3, emails=["x@x"], phones=["+33612345678"])   # new, not indexed yet
    d = rec("crm", 4, phones=["+33612345678"])    # new, linked to c only
    indexed = {a.ref: "cus_A", b.ref: "cus_B"}
    clusters = cluster([d, c, b, a], RANK, indexed=indexed)
    by_id = {cl.id: [r.ref for r in cl.records] for cl in clusters}
    # the shared e-mail does not undo the index; c (and d through c) attach to the first one
    assert by_id == {"cus_A": [("paris", "1"), ("crm", "3"), ("crm", "4")],
                     "cus_B": [("london", "2")]}
