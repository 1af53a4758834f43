"""The hand-written direct path that ``direct_path.py`` holds the gateway against.

What an application that owns its keys would write for the demo's schemas: the same drivers as
the gateway (asyncpg for paris, asyncmy for london, aiosqlite for berlin, httpx for the CRM),
warm pools, the least SQL that answers (one statement for a customer with its joins, one
``UNION ALL ... ORDER BY date DESC LIMIT n`` for its money), every source at once with
``asyncio.gather``, the results stitched into dicts by hand and serialised with orjson. It knows
which record of each source is the customer's (the world's truth.json): no lookups, no identity
resolution, no survivorship, no policy, no audit. ``trips`` counts its round trips.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiosqlite
import asyncmy
import asyncpg  # type: ignore[import-untyped]
import httpx
import orjson

POOL_SIZE = 5

PARIS_CUSTOMER = """
SELECT c.id, c.type_client, c.prenom, c.nom, c.raison_sociale, c.courriel, c.telephone,
       c.date_naissance, c.carte_fidelite, c.points,
       d.rue, d.code_postal, d.ville, d.pays, f.rue, f.code_postal, f.ville, f.pays
FROM clients c
LEFT JOIN adresses d ON d.id = c.adresse_id
LEFT JOIN adresses f ON f.id = c.adresse_facturation_id
WHERE c.id = $1"""
# Each shop's money tables in one statement: the shop keeps one date format for all of them.
PARIS_MONEY = """
SELECT * FROM (
  SELECT 'INVOICE' AS kind, id, montant_centimes, date_achat AS at, statut, id AS ref, client_id
  FROM achats WHERE client_id = ANY($1::int[])
  UNION ALL
  SELECT 'PAYMENT', id, montant_centimes, date_paiement, statut, achat_id, client_id
  FROM paiements WHERE client_id = ANY($1::int[])
) m ORDER BY at DESC"""
LONDON_CUSTOMER = """
SELECT c.customer_id, c.account_type, c.full_name, c.company_name, c.email_address, c.mobile,
       c.home_phone, c.street, c.postcode, c.town, l.account_no, l.points
FROM customers c LEFT JOIN loyalty_accounts l ON l.customer_id = c.customer_id
WHERE c.customer_id = %s"""
LONDON_MONEY = """
SELECT 'INVOICE' AS kind, order_id, total, ordered_at AS at, state, currency FROM orders
WHERE customer_id = %s
UNION ALL SELECT 'PAYMENT', payment_id, amount, paid_at, outcome, NULL FROM payments
WHERE customer_id = %s
UNION ALL SELECT 'REFUND', refund_id, amount, refunded_at, 'COMPLETED', NULL FROM refunds
WHERE customer_id = %s
ORDER BY at DESC LIMIT %s"""
BERLIN_CUSTOMER = """
SELECT KundeId, Kundentyp, Vorname, Nachname, Firma, EMail, Telefon, Strasse, PLZ, Ort, Land,
       Geburtsdatum, Kundenkarte, Bonuspunkte
FROM Kunde WHERE KundeId = ?"""
BERLIN_MONEY = """
SELECT 'INVOICE' AS kind, Rechnungsnummer, Betrag, Datum AS at, Status, Waehrung FROM Rechnung
WHERE KundeId = ?1
UNION ALL SELECT 'PAYMENT', ZahlungId, Betrag, Datum, Status, NULL FROM Zahlung WHERE KundeId = ?1
UNION ALL SELECT 'CREDIT', GutschriftId, Betrag, Datum, 'COMPLETED', NULL FROM Gutschrift
WHERE KundeId = ?1
ORDER BY at DESC LIMIT ?2"""
CONTACT_PROPERTIES = "firstname,lastname,email,phone,mobilephone,address,zip,city,country,loyalty_card"
#: CRM engagement type -> (channel, subject property, text property).
ENGAGEMENTS = {"notes": ("NOTE", None, "hs_note_body"),
               "calls": ("CALL", "hs_call_title", "hs_call_body"),
               "emails": ("EMAIL", "hs_email_subject", "hs_email_text"),
               "meetings": ("MEETING", "hs_meeting_title", "hs_meeting_body")}


def cents(value: int) -> str:
    return str(Decimal(value).scaleb(-2))


def epoch_iso(value: int) -> str:
    return datetime.fromtimestamp(value, UTC).strftime("%Y-%m-%dT%H:%M:%S")


class DirectPath:
    """Warm pools to the four sources and the hand-written reads."""

    def __init__(self, postgres: Mapping[str, Any], mariadb: Mapping[str, Any], berlin: Path,
                 crm_url: str, crm_token: str) -> None:
        self.postgres, self.mariadb, self.berlin_path = dict(postgres), dict(mariadb), berlin
        self.crm_url, self.crm_token = crm_url, crm_token
        self.trips: Counter[str] = Counter()  # "sql" and "http" round trips since the last reset

    async def open(self) -> None:
        self.pg = await asyncpg.create_pool(min_size=POOL_SIZE, max_size=POOL_SIZE,
                                            **self.postgres)
        options = {("db" if k == "database" else k): v for k, v in self.mariadb.items()}
        self.my = await asyncmy.create_pool(minsize=POOL_SIZE, maxsize=POOL_SIZE,
                                            autocommit=True, charset="utf8mb4", **options)
        # aiosqlite runs each connection on a thread of its own: a small pool of them.
        self.lite: asyncio.Queue[aiosqlite.Connection] = asyncio.Queue()
        for _ in range(POOL_SIZE):
            self.lite.put_nowait(await aiosqlite.connect(
                self.berlin_path.as_uri() + "?mode=ro", uri=True))
        self.crm = httpx.AsyncClient(base_url=self.crm_url,
                                     headers={"authorization": f"Bearer {self.crm_token}"})

    async def aclose(self) -> None:
        await self.pg.close()
        self.my.close()
        await self.my.wait_closed()
        while not self.lite.empty():
            await self.lite.get_nowait().close()
        await self.crm.aclose()

    # -- one statement or request each ----------------------------------------------------

    async def pg_rows(self, sql: str, *params: Any) -> list[Any]:
        self.trips["sql"] += 1
        async with self.pg.acquire() as conn:
            return await conn.fetch(sql, *params)

    async def my_rows(self, sql: str, *params: Any) -> Sequence[Any]:
        self.trips["sql"] += 1
        async with self.my.acquire() as conn, conn.cursor() as cur:
            await cur.execute(sql, params)
            return await cur.fetchall()

    async def lite_rows(self, sql: str, *params: Any) -> list[Any]:
        self.trips["sql"] += 1
        conn = await self.lite.get()
        try:
            return list(await conn.execute_fetchall(sql, params))
        finally:
            self.lite.put_nowait(conn)

    async def crm_call(self, method: str, path: str, body: Any = None, **params: Any) -> Any:
        self.trips["http"] += 1
        response = await self.crm.request(method, path, params=params or None,
                                          content=None if body is None else orjson.dumps(body),
                                          headers={"content-type": "application/json"})
        response.raise_for_status()
        return orjson.loads(response.content)

    # -- per source: (customer part, transactions) --------------------------------------------

    async def paris(self, key: str, money: int) -> tuple[dict, list[dict]]:
        row, rows = await asyncio.gather(self.pg_rows(PARIS_CUSTOMER, int(key)),
                                         self.pg_rows(PARIS_MONEY + " LIMIT $2", [int(key)], money))
        return paris_customer(row[0]), [paris_money(r) for r in rows]

    async def london(self, key: str, money: int) -> tuple[dict, list[dict]]:
        row, rows = await asyncio.gather(self.my_rows(LONDON_CUSTOMER, key),
                                         self.my_rows(LONDON_MONEY, key, key, key, money))
        c = row[0]
        customer = {"source": "london", "id": c[0], "kind": c[1], "name": c[2], "legalName": c[3],
                    "emails": [c[4]], "phones": [p for p in c[5:7] if p],
                    "addresses": [{"type": "HOME", "line1": c[7], "postcode": c[8], "city": c[9],
                                   "country": "GB"}],
                    "loyaltyCards": [{"number": c[10], "points": c[11]}] if c[10] else []}
        return customer, [{"shop": "london", "kind": r[0], "id": r[1], "amount": r[2],
                           "currency": r[5] or "GBP", "date": epoch_iso(r[3]), "status": r[4]}
                          for r in rows]

    async def berlin(self, key: str, money: int) -> tuple[dict, list[dict]]:
        row, rows = await asyncio.gather(self.lite_rows(BERLIN_CUSTOMER, int(key)),
                                         self.lite_rows(BERLIN_MONEY, int(key), money))
        c = row[0]
        customer = {"source": "berlin", "id": str(c[0]), "kind": c[1], "given": c[2],
                    "family": c[3], "legalName": c[4], "emails": [c[5]], "phones": [c[6]],
                    "birthDate": c[11],
                    "addresses": [{"type": "HOME", "line1": c[7], "postcode": c[8], "city": c[9],
                                   "country": c[10]}],
                    "loyaltyCards": [{"number": c[12], "points": c[13]}] if c[12] else []}
        return customer, [{"shop": "berlin", "kind": r[0], "id": str(r[1]), "amount": r[2],
                           "currency": r[5] or "EUR", "date": r[3].replace(" ", "T"),
                           "status": r[4]} for r in rows]

    async def crm_contact(self, key: str, first: int) -> tuple[dict, list[dict]]:
        """The contact and, in a second round, its newest interactions of every kind."""
        contact, *links = await asyncio.gather(
            self.crm_call("GET", f"/crm/v3/objects/contacts/{key}", properties=CONTACT_PROPERTIES),
            *(self.crm_call("POST", f"/crm/v4/associations/contacts/{kind}/batch/read",
                            {"inputs": [{"id": key}]}) for kind in ENGAGEMENTS))
        reads = []
        for kind, answer in zip(ENGAGEMENTS, links, strict=True):
            ids = [to["toObjectId"] for r in answer["results"] for to in r["to"]]
            if ids:
                _, subject, text = ENGAGEMENTS[kind]
                props = ["hs_timestamp", text] + ([subject] if subject else [])
                reads.append((kind, self.crm_call(
                    "POST", f"/crm/v3/objects/{kind}/batch/read",
                    {"inputs": [{"id": str(i)} for i in ids], "properties": props})))
        interactions = []
        for (kind, _), answer in zip(reads, await asyncio.gather(*(r for _, r in reads)),
                                     strict=True):
            channel, subject, text = ENGAGEMENTS[kind]
            interactions += [{"id": o["id"], "channel": channel,
                              "date": o["properties"]["hs_timestamp"],
                              "subject": o["properties"].get(subject) if subject else None,
                              "summary": o["properties"].get(text)} for o in answer["results"]]
        interactions.sort(key=lambda i: i["date"] or "", reverse=True)
        p = contact["properties"]
        customer = {"source": "crm", "id": contact["id"], "given": p["firstname"],
                    "family": p["lastname"], "emails": [p["email"]],
                    "phones": [x for x in (p["phone"], p["mobilephone"]) if x],
                    "addresses": [{"type": "HOME", "line1": p["address"], "postcode": p["zip"],
                                   "city": p["city"], "country": p["country"]}],
                    "loyaltyCards": [{"number": p["loyalty_card"]}] if p["loyalty_card"] else []}
        return customer, interactions[:first]

    # -- the scenarios' requests ---------------------------------------------------------------

    async def customer_360(self, keys: Mapping[str, str], transactions: int = 20,
                           interactions: int = 10) -> bytes:
        """One customer from every source that holds it, as one JSON document."""
        shops = {"paris": self.paris, "london": self.london, "berlin": self.berlin}
        calls = [shops[s](k, transactions) for s, k in keys.items() if s in shops]
        if "crm" in keys:
            calls.append(self.crm_contact(keys["crm"], interactions))
        parts = await asyncio.gather(*calls)
        records = [customer for customer, _ in parts]
        money = [t for (customer, rows) in parts if customer["source"] != "crm" for t in rows]
        money.sort(key=lambda t: t["date"], reverse=True)
        crm = next((rows for customer, rows in parts if customer["source"] == "crm"), [])
        return orjson.dumps({
            "records": [{"source": r["source"], "localId": r["id"]} for r in records],
            "names": [{k: r.get(k) for k in ("given", "family", "name")} for r in records],
            "emails": sorted({e.strip().lower() for r in records for e in r["emails"] if e}),
            "phones": sorted({p for r in records for p in r["phones"] if p}),
            "addresses": [a for r in records for a in r["addresses"] if a["line1"]],
            "loyaltyCards": [c for r in records for c in r["loyaltyCards"]],
            "transactions": money[:transactions], "interactions": crm})

    async def paris_page(self, after: int, first: int, transactions: int = 20) -> bytes:
        """``first`` paris clients after a key, each with its newest transactions: one
        statement for the page, one for the money of all of them."""
        page = await self.pg_rows(PARIS_CUSTOMER.replace("WHERE c.id = $1", "WHERE c.id > $1")
                                  + " ORDER BY c.id LIMIT $2", after, first)
        ids = [r[0] for r in page]
        money: dict[int, list[dict]] = {i: [] for i in ids}
        for r in await self.pg_rows(PARIS_MONEY, ids):
            mine = money[r[6]]
            if len(mine) < transactions:  # rows come newest first
                mine.append(paris_money(r))
        return orjson.dumps({"customers": [{**paris_customer(r), "transactions": money[r[0]]}
                                           for r in page]})


def paris_customer(c: Any) -> dict:
    addresses = [{"type": kind, "line1": c[i], "postcode": c[i + 1], "city": c[i + 2],
                  "country": c[i + 3]} for kind, i in (("HOME", 10), ("BILLING", 14)) if c[i]]
    return {"source": "paris", "id": str(c[0]), "kind": c[1], "given": c[2], "family": c[3],
            "legalName": c[4], "emails": [c[5]], "phones": [c[6]], "birthDate": c[7],
            "addresses": addresses,
            "loyaltyCards": [{"number": c[8], "points": c[9]}] if c[8] else []}


def paris_money(r: Any) -> dict:
    return {"shop": "paris", "kind": r[0], "id": str(r[1]), "amount": cents(r[2]),
            "currency": "EUR", "date": r[3], "status": r[4], "reference": str(r[5])}
