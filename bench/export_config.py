"""What the gateway is given for the export benchmark's world: its crosswalks and configs.

The generator knows who is who, so the crosswalk is written through the crosswalk API
(``apply_index``) rather than by ``panorama index``: one customer per person, its global id
made from its first record in config order (as the index makes it), the other records linked
with e-mail evidence, no key hashes. ``panorama.yaml`` reads the three shops through
``crosswalk.db``; ``panorama-paris.yaml`` reads paris alone through ``crosswalk-paris.db``,
which holds the same global ids.
"""

from __future__ import annotations

import json
import secrets

from export_world import CURRENCY, ENGINE, SHOPS, TABLES, ExportWorld, local_keys, refs_of

from gateway.crosswalk import Evidence, IndexRun, Member, open_crosswalk
from gateway.identity import encode_id


async def write_crosswalks(world: ExportWorld, masks: bytearray) -> None:
    """One customer per person (the founder: its first record; the others linked by e-mail), and
    paris alone, with the same global ids, for the PostgreSQL-only config."""
    keys = local_keys(masks)

    def members(shops: tuple[str, ...]):
        for person in range(len(masks)):
            refs = refs_of(keys, person)
            gid = encode_id(*refs[0])
            for n, ref in enumerate(refs):
                if ref[0] in shops:
                    yield Member(ref, gid, None if n == 0 else
                                 Evidence("email", 1.0, ("email",), linked_to=refs[0]))

    for name, shops in (("crosswalk.db", SHOPS), ("crosswalk-paris.db", ("paris",))):
        (world.directory / name).unlink(missing_ok=True)
        async with open_crosswalk(f"sqlite:///{name}", world.directory) as crosswalk:
            await crosswalk.apply_index(IndexRun(members=members(shops), key_hashes={},
                                                 scope_sources=set(shops)))


def write_configs(world: ExportWorld) -> None:
    for secret in ("identity.secret", "auth.secret"):
        path = world.directory / secret
        if not path.is_file():
            path.write_text(secrets.token_urlsafe(32))
    for path, shops, crosswalk in ((world.config, SHOPS, "crosswalk.db"),
                                   (world.config_paris, ("paris",), "crosswalk-paris.db")):
        body = "".join(source_yaml(world, shop) for shop in shops)
        path.write_text(
            "# The accounts export benchmark's world (bench/export_world.py); rewritten by a build.\n"
            f"identity:\n  secret: \"${{file:identity.secret}}\"\n  store: sqlite:///{crosswalk}\n"
            "auth:\n  secret: \"${file:auth.secret}\"\n"
            "finance:  # accounts in EUR; london's GBP converted at one fixed rate\n"
            "  currency: EUR\n  rates:\n    \"2020-01-01\": {GBP: \"1.17\"}\n"
            f"sources:\n{body}")


def source_yaml(world: ExportWorld, shop: str) -> str:
    engine = ENGINE[shop]
    if engine == "sqlite":
        connection = "      path: berlin.db\n"
    else:
        connection = "".join(f"      {k}: {json.dumps(v)}\n" for k, v in world.databases[shop].items())
    amount = "{column: amount_cents, transform: cents}" if engine == "sqlite" else \
        "{column: amount, transform: decimal}"
    kinds = (("invoices", "INVOICE", "issued_at",
              "{column: status, map: {paid: COMPLETED, pending: PENDING, cancelled: CANCELLED}}",
              "number"),
             ("payments", "PAYMENT", "paid_at", "{column: status, map: {ok: COMPLETED, failed: FAILED}}",
              "{column: invoice_id, transform: string}"),
             (TABLES[shop][2], "CREDIT" if shop == "berlin" else "REFUND",
              "created_at" if shop == "berlin" else "refunded_at", "{value: COMPLETED}",
              "{column: invoice_id, transform: string}"))
    money = "".join(
        f"      - table: {table}\n        key: id\n        customer: customer_id\n        fields:\n"
        f"          kind: {{value: {kind}}}\n          amount: {amount}\n"
        f"          currency: {{value: {CURRENCY[shop]}}}\n"
        f"          date: {{column: {date}, transform: datetime}}\n"
        f"          status: {status}\n          reference: {reference}\n"
        for table, kind, date, status, reference in kinds)
    return (f"  {shop}:\n    kind: {engine}\n    shop: Shop {shop.title()}\n"
            f"    connection:\n{connection}"
            f"    defaults:\n      country: {'GB' if shop == 'london' else 'FR'}\n"
            f"      currency: {CURRENCY[shop]}\n"
            "    customer:\n      table: customers\n      key: id\n      fields:\n"
            "        given_name: given_name\n        family_name: family_name\n"
            "        emails:\n          - {column: email, type: PERSONAL}\n"
            "        phones:\n          - {column: phone, type: MOBILE}\n"
            f"    transactions:\n{money}")
