"""The three shops' till databases: each with its own schema, language, ids, cards and money.

- paris.db: French, one row per client, addresses in their own table (home and billing ids on
  the client), money in integer cents.
- london.db: English, one full-name column (trade accounts: a trading and a company name;
  now and then the family name first),
  text ids ("LDN-000123"), the card in a separate loyalty_accounts table, epoch-second dates,
  money as decimal text ("12.50").
- berlin.db: German CamelCase, numbered invoices, credit notes, money as decimal text.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable
from datetime import datetime
from pathlib import Path
from typing import TypeVar

from gateway.demo import names
from gateway.demo.people import Party, Sale, decimal_text

Rows = list[tuple[Party, dict]]
K = TypeVar("K", int, str)

PARIS_DDL = """
CREATE TABLE clients (
    id INTEGER PRIMARY KEY,
    type_client TEXT NOT NULL DEFAULT 'particulier'
        CHECK (type_client IN ('particulier', 'professionnel')),
    civilite TEXT, nom TEXT, prenom TEXT, raison_sociale TEXT, numero_tva TEXT,
    courriel TEXT, telephone TEXT, date_naissance TEXT,
    carte_fidelite TEXT UNIQUE, points INTEGER NOT NULL DEFAULT 0,
    adresse_id INTEGER REFERENCES adresses (id),
    adresse_facturation_id INTEGER REFERENCES adresses (id),
    cree_le TEXT NOT NULL
);
CREATE TABLE adresses (
    id INTEGER PRIMARY KEY,
    client_id INTEGER NOT NULL REFERENCES clients (id),
    type TEXT NOT NULL CHECK (type IN ('domicile', 'facturation')),
    rue TEXT, code_postal TEXT, ville TEXT, pays TEXT
);
CREATE TABLE achats (
    id INTEGER PRIMARY KEY,
    client_id INTEGER NOT NULL REFERENCES clients (id),
    date_achat TEXT NOT NULL,
    montant_centimes INTEGER NOT NULL,
    statut TEXT NOT NULL CHECK (statut IN ('payee', 'attente', 'annulee'))
);
CREATE TABLE paiements (
    id INTEGER PRIMARY KEY,
    client_id INTEGER NOT NULL REFERENCES clients (id),
    achat_id INTEGER REFERENCES achats (id),
    date_paiement TEXT NOT NULL,
    montant_centimes INTEGER NOT NULL,
    moyen TEXT NOT NULL,
    statut TEXT NOT NULL CHECK (statut IN ('ok', 'rejete'))
);
CREATE INDEX clients_courriel ON clients (courriel);
CREATE INDEX adresses_client ON adresses (client_id);
CREATE INDEX achats_client ON achats (client_id);
CREATE INDEX paiements_client ON paiements (client_id);
"""

LONDON_DDL = """
CREATE TABLE customers (
    customer_id TEXT PRIMARY KEY,
    account_type TEXT NOT NULL DEFAULT 'RETAIL' CHECK (account_type IN ('RETAIL', 'TRADE')),
    full_name TEXT, trading_name TEXT, company_name TEXT, vat_number TEXT,
    email_address TEXT, mobile TEXT, home_phone TEXT,
    street TEXT, town TEXT, postcode TEXT,
    created_at INTEGER NOT NULL
);
CREATE TABLE loyalty_accounts (
    account_no TEXT PRIMARY KEY,
    customer_id TEXT NOT NULL UNIQUE REFERENCES customers (customer_id),
    points INTEGER NOT NULL,
    opened TEXT NOT NULL
);
CREATE TABLE orders (
    order_id INTEGER PRIMARY KEY,
    customer_id TEXT NOT NULL REFERENCES customers (customer_id),
    ordered_at INTEGER NOT NULL,
    total TEXT NOT NULL,
    currency TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('PAID', 'PENDING', 'CANCELLED'))
);
CREATE TABLE payments (
    payment_id INTEGER PRIMARY KEY,
    order_id INTEGER NOT NULL REFERENCES orders (order_id),
    customer_id TEXT NOT NULL REFERENCES customers (customer_id),
    paid_at INTEGER NOT NULL,
    amount TEXT NOT NULL,
    method TEXT NOT NULL,
    outcome TEXT NOT NULL CHECK (outcome IN ('SUCCEEDED', 'DECLINED'))
);
CREATE TABLE refunds (
    refund_id INTEGER PRIMARY KEY,
    order_id INTEGER NOT NULL REFERENCES orders (order_id),
    customer_id TEXT NOT NULL REFERENCES customers (customer_id),
    refunded_at INTEGER NOT NULL,
    amount TEXT NOT NULL,
    reason TEXT
);
CREATE INDEX customers_email ON customers (email_address);
CREATE INDEX orders_customer ON orders (customer_id);
CREATE INDEX payments_customer ON payments (customer_id);
CREATE INDEX refunds_customer ON refunds (customer_id);
"""

BERLIN_DDL = """
CREATE TABLE Kunde (
    KundeId INTEGER PRIMARY KEY,
    Kundentyp TEXT NOT NULL DEFAULT 'Privat' CHECK (Kundentyp IN ('Privat', 'Firma')),
    Anrede TEXT, Vorname TEXT, Nachname TEXT, Firma TEXT, UStIdNr TEXT,
    EMail TEXT, Telefon TEXT, Strasse TEXT, PLZ TEXT, Ort TEXT, Land TEXT,
    Geburtsdatum TEXT, Kundenkarte TEXT UNIQUE, Bonuspunkte INTEGER NOT NULL DEFAULT 0,
    AngelegtAm TEXT NOT NULL
);
CREATE TABLE Rechnung (
    RechnungId INTEGER PRIMARY KEY,
    Rechnungsnummer TEXT NOT NULL UNIQUE,
    KundeId INTEGER NOT NULL REFERENCES Kunde (KundeId),
    Datum TEXT NOT NULL,
    Betrag TEXT NOT NULL,
    Waehrung TEXT NOT NULL,
    Status TEXT NOT NULL CHECK (Status IN ('bezahlt', 'offen', 'storniert'))
);
CREATE TABLE Zahlung (
    ZahlungId INTEGER PRIMARY KEY,
    RechnungId INTEGER NOT NULL REFERENCES Rechnung (RechnungId),
    KundeId INTEGER NOT NULL REFERENCES Kunde (KundeId),
    Datum TEXT NOT NULL,
    Betrag TEXT NOT NULL,
    Zahlungsart TEXT NOT NULL,
    Status TEXT NOT NULL CHECK (Status IN ('gebucht', 'abgelehnt'))
);
CREATE TABLE Gutschrift (
    GutschriftId INTEGER PRIMARY KEY,
    RechnungId INTEGER NOT NULL REFERENCES Rechnung (RechnungId),
    KundeId INTEGER NOT NULL REFERENCES Kunde (KundeId),
    Datum TEXT NOT NULL,
    Betrag TEXT NOT NULL,
    Grund TEXT
);
CREATE INDEX Kunde_EMail ON Kunde (EMail);
CREATE INDEX Rechnung_Kunde ON Rechnung (KundeId);
CREATE INDEX Zahlung_Kunde ON Zahlung (KundeId);
CREATE INDEX Gutschrift_Kunde ON Gutschrift (KundeId);
"""

# Each shop's words for the same things.
STATES = {"paris": {"paid": "payee", "pending": "attente", "cancelled": "annulee"},
          "london": {"paid": "PAID", "pending": "PENDING", "cancelled": "CANCELLED"},
          "berlin": {"paid": "bezahlt", "pending": "offen", "cancelled": "storniert"}}
METHODS = {"paris": {"card": "carte", "contactless": "sans_contact", "cash": "especes",
                     "transfer": "virement"},
           "london": {"card": "card", "contactless": "contactless", "cash": "cash",
                      "transfer": "bank_transfer"},
           "berlin": {"card": "EC-Karte", "contactless": "kontaktlos", "cash": "Bar",
                      "transfer": "Überweisung"}}
COUNTRY_NAMES = {"FR": "Frankreich", "GB": "Vereinigtes Königreich", "DE": "Deutschland"}


def write_paris(path: Path, rows: Rows) -> dict[int, str]:
    """Write paris.db; return each party's client id."""
    clients: list[tuple] = []
    addresses: list[tuple] = []
    purchases: list[tuple] = []
    payments: list[tuple] = []
    for cid, (p, r) in enumerate(rows, 1):
        address_ids = []
        for kind, address in (("domicile", r["address"]), ("facturation", r["billing"])):
            if address:
                addresses.append((len(addresses) + 1, cid, kind, *address, p.country))
            address_ids.append(len(addresses) if address else None)
        clients.append((
            cid, "particulier" if p.kind == "PERSON" else "professionnel", _title(p, "Mme", "M."),
            (r["family"] or "").upper() or None, r["given"], p.legal, p.vat, r["email"],
            r["phone"], r["birth"], r["card"], _points(r), *address_ids, _iso(r["created"])))
    for cid, sale in _by_date(rows, lambda i: i):
        purchases.append((len(purchases) + 1, cid, _iso(sale.at), sale.cents,
                          STATES["paris"][sale.state]))
        payments.extend((len(payments) + 1, cid, len(purchases), _iso(pay.at), pay.cents,
                         METHODS["paris"][pay.method], "ok" if pay.ok else "rejete")
                        for pay in sale.payments)
    _write(path, PARIS_DDL, {"clients": clients, "adresses": addresses, "achats": purchases,
                             "paiements": payments})
    return {p.n: str(cid) for cid, (p, _) in enumerate(rows, 1)}


def write_london(path: Path, rows: Rows) -> dict[int, str]:
    """Write london.db; return each party's customer id."""
    customers: list[tuple] = []
    accounts: list[tuple] = []
    orders: list[tuple] = []
    payments: list[tuple] = []
    refunds: list[tuple] = []
    reasons = names.REFUND_REASONS["london"]
    for i, (p, r) in enumerate(rows, 1):
        key = _london_key(i)
        if r["card"]:
            accounts.append((r["card"], key, _points(r), r["created"].date().isoformat()))
        # Trade accounts leave full_name empty: it would read as a person's name.
        name = r.get("full_name") or r["family"] and f"{r['given']} {r['family']}"
        trading = None if p.kind == "PERSON" else r.get("trading") or p.trading
        street, postcode, town = r["address"] or (None, None, None)
        customers.append((key, "RETAIL" if p.kind == "PERSON" else "TRADE", name, trading,
                          p.legal, r.get("vat", p.vat), r["email"], r["phone"], r["landline"],
                          street, town, postcode, _epoch(r["created"])))
    for key, sale in _by_date(rows, _london_key):
        oid = 100_000 + len(orders) + 1
        orders.append((oid, key, _epoch(sale.at), decimal_text(sale.cents), "GBP",
                       STATES["london"][sale.state]))
        payments.extend((len(payments) + 1, oid, key, _epoch(pay.at), decimal_text(pay.cents),
                         METHODS["london"][pay.method], "SUCCEEDED" if pay.ok else "DECLINED")
                        for pay in sale.payments)
        if sale.refund:
            at, cents, reason = sale.refund
            refunds.append((len(refunds) + 1, oid, key, _epoch(at), decimal_text(cents),
                            reasons[reason]))
    _write(path, LONDON_DDL, {"customers": customers, "loyalty_accounts": accounts,
                              "orders": orders, "payments": payments, "refunds": refunds})
    return {p.n: _london_key(i) for i, (p, _) in enumerate(rows, 1)}


def write_berlin(path: Path, rows: Rows) -> dict[int, str]:
    """Write berlin.db; return each party's KundeId."""
    customers: list[tuple] = []
    invoices: list[tuple] = []
    payments: list[tuple] = []
    credits: list[tuple] = []
    reasons = names.REFUND_REASONS["berlin"]
    for i, (p, r) in enumerate(rows, 1):
        street, postcode, town = r["address"] or (None, None, None)
        customers.append((
            _berlin_key(i), "Privat" if p.kind == "PERSON" else "Firma",
            _title(p, "Frau", "Herr"), r["given"], r["family"], p.legal, p.vat, r["email"],
            r["phone"], street, postcode, town, COUNTRY_NAMES[p.country] if street else None,
            r["birth"], r["card"], _points(r), _iso(r["created"], " ")))
    for kid, sale in _by_date(rows, _berlin_key):
        rid = len(invoices) + 1
        invoices.append((rid, f"RE-{sale.at.year}-{rid:05d}", kid, _iso(sale.at, " "),
                         decimal_text(sale.cents), "EUR", STATES["berlin"][sale.state]))
        payments.extend((len(payments) + 1, rid, kid, _iso(pay.at, " "), decimal_text(pay.cents),
                         METHODS["berlin"][pay.method], "gebucht" if pay.ok else "abgelehnt")
                        for pay in sale.payments)
        if sale.refund:
            at, cents, reason = sale.refund
            credits.append((len(credits) + 1, rid, kid, _iso(at, " "), decimal_text(cents),
                            reasons[reason]))
    _write(path, BERLIN_DDL, {"Kunde": customers, "Rechnung": invoices, "Zahlung": payments,
                              "Gutschrift": credits})
    return {p.n: str(_berlin_key(i)) for i, (p, _) in enumerate(rows, 1)}


WRITERS: dict[str, Callable[[Path, Rows], dict[int, str]]] = {
    "paris": write_paris, "london": write_london, "berlin": write_berlin}


def _london_key(i: int) -> str:
    return f"LDN-{i:06d}"


def _berlin_key(i: int) -> int:
    return 10_000 + i


def _by_date(rows: Rows, key: Callable[[int], K]) -> list[tuple[K, Sale]]:
    """Every sale of the shop with its customer's key, oldest first: ids follow the calendar."""
    sales = [(key(i), sale) for i, (_, r) in enumerate(rows, 1) for sale in r["sales"]]
    return sorted(sales, key=lambda ks: ks[1].at)


def _write(path: Path, ddl: str, tables: dict[str, Iterable[tuple]]) -> None:
    for stale in (path, path.with_name(path.name + "-journal")):
        stale.unlink(missing_ok=True)
    connection = sqlite3.connect(path)
    try:
        connection.executescript(ddl)
        for table, rows in tables.items():
            rows = list(rows)
            if rows:
                marks = ", ".join("?" * len(rows[0]))
                connection.executemany(f"INSERT INTO {table} VALUES ({marks})", rows)
        connection.commit()
    finally:
        connection.close()


def _title(p: Party, feminine: str, masculine: str) -> str | None:
    if p.kind != "PERSON":
        return None
    return feminine if p.given in names.FEMININE else masculine


def _points(r: dict) -> int:
    """One point per whole unit of currency paid."""
    return sum(s.cents for s in r["sales"] if s.state == "paid") // 100


def _iso(moment: datetime, separator: str = "T") -> str:
    return moment.strftime(f"%Y-%m-%d{separator}%H:%M:%S")


def _epoch(moment: datetime) -> int:
    return int(moment.timestamp())
