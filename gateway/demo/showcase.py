"""The two customers the demo shows off, written by hand so that every seed has them.

Camille Martin shops in all three shops and is in the CRM: her e-mail is written three ways,
her phone four, her given name is misspelt in Berlin, and she has purchases, payments, a
refund (London), a credit note (Berlin), notes, a call, an e-mail and a meeting.
Le Petit Bistro SARL is a restaurant buying wholesale in Paris and London, with open invoices.
A third showcase value, "fuzzy", is drawn from the population: a person whose record in one
other shop shares no e-mail, phone or card with the others (see people.py).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from gateway.demo import names
from gateway.demo.people import Party, Payment, Sale

PERSON: dict[str, Any] = {
    "name": "Camille Martin", "email": "camille.martin@example.fr", "phone": "+33612345678",
    "cards": {"paris": "PAR-4821-0093", "london": "LDN 5512 3300", "berlin": "B-00042"}}
ORGANIZATION: dict[str, Any] = {
    "name": "Le Petit Bistro SARL", "email": "commandes@lepetitbistro.example",
    "phone": "+33671223344", "vat": "FR74912345678",
    "cards": {"paris": "PAR-0001-0457", "london": "LDN 2026 0457"}}


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def _paid(when: str, cents: int, method: str = "card", *, declined_first: bool = False,
          after: timedelta = timedelta(minutes=1), refund: tuple[str, int, int] | None = None) -> Sale:
    at = _at(when)
    payments = []
    if declined_first:
        payments.append(Payment(at + after, cents, False, method))
        after += timedelta(minutes=2)
    payments.append(Payment(at + after, cents, True, method))
    back = (_at(refund[0]), refund[1], refund[2]) if refund else None
    return Sale(at, cents, "paid", tuple(payments), back)


def _camille() -> Party:
    home = ("12 rue Cler", "75007", "Paris")
    base = {"given": "Camille", "family": "Martin", "landline": None, "address": None,
            "billing": None, "birth": None}
    p = Party(0, "PERSON", "FR", given="Camille", family="Martin", email=PERSON["email"],
              mobile="612345678", birth="1988-04-12", address=home,
              created=_at("2021-03-06 09:20"), shops=["paris", "london", "berlin"],
              links={"london": "email", "berlin": "typo"}, crm="email")
    p.fixed["paris"] = {
        **base, "email": PERSON["email"], "phone": "06 12 34 56 78", "address": home,
        "billing": ("45 rue de Grenelle", "75007", "Paris"), "birth": p.birth,
        "created": p.created, "card": PERSON["cards"]["paris"],
        "sales": [_paid("2025-03-08 08:12", 1240),
                  _paid("2025-06-21 10:05", 6800, declined_first=True),
                  _paid("2025-09-13 09:41", 385, "contactless"),
                  Sale(_at("2025-12-20 11:30"), 4590, "pending")]}
    p.fixed["london"] = {
        **base, "email": "CAMILLE.MARTIN@EXAMPLE.FR ", "phone": "+33612345678",
        "created": _at("2023-05-20 13:05"), "card": PERSON["cards"]["london"],
        "sales": [_paid("2025-07-14 09:15", 840, "contactless"),
                  _paid("2025-07-16 12:02", 2350, refund=("2025-07-18 10:00", 650, 1)),
                  Sale(_at("2025-07-17 08:30"), 450, "cancelled")]}
    p.fixed["berlin"] = {
        **base, "given": "Camile", "email": "Camille.Martin@Example.fr",
        "phone": "0033 6 12 34 56 78", "birth": p.birth, "created": _at("2024-09-14 10:40"),
        "card": PERSON["cards"]["berlin"],
        "sales": [_paid("2025-10-03 08:47", 1420),
                  _paid("2025-10-04 09:10", 690, "cash", refund=("2025-10-06 09:00", 190, 3))]}
    p.fixed["crm"] = {
        "createdAt": "2024-11-02T14:20:00.000Z",
        "properties": {"firstname": "Camille", "lastname": "Martin", "email": PERSON["email"],
                       "phone": "+33612345678", "mobilephone": None, "address": home[0],
                       "city": home[2], "zip": home[1], "country": "France", "company": None,
                       "loyalty_card": "PAR 4821 0093", "lifecyclestage": "customer"},
        "engagements": [
            ("notes", "2025-04-02T09:30:00Z", {"hs_note_body": names.NOTES[0]}),
            ("emails", "2025-04-03T08:00:00Z", {
                "hs_email_subject": names.EMAILS[0][0],
                "hs_email_text": names.EMAILS[0][1].format(given="Camille"),
                "hs_email_direction": "EMAIL"}),
            ("notes", "2025-05-10T16:45:00Z", {"hs_note_body": names.NOTES[1]}),
            ("meetings", "2025-05-24T15:00:00Z", {
                "hs_meeting_title": names.MEETINGS[0][0],
                "hs_meeting_body": names.MEETINGS[0][1].format(given="Camille")}),
            ("calls", "2025-07-17T10:12:00Z", {
                "hs_call_title": names.CALLS[0][0],
                "hs_call_body": names.CALLS[0][1].format(given="Camille"),
                "hs_call_direction": "INBOUND"}),
        ]}
    return p


def _bistro() -> Party:
    paris_home = ("27 rue Saint-Dominique", "75007", "Paris")
    p = Party(1, "ORGANIZATION", "FR", trading="Le Petit Bistro", legal=ORGANIZATION["name"],
              vat=ORGANIZATION["vat"], email=ORGANIZATION["email"], mobile="671223344",
              address=paris_home, created=_at("2022-02-01 07:30"), shops=["paris", "london"],
              links={"london": "email"})
    monthly = (31240, 28875, 34510, 29990, 36420, 41250, 25580, 18760, 33300, 35115, 38840, 42275)
    invoices = [_paid(f"2025-{m:02d}-05 07:30", cents, "transfer", after=timedelta(days=21),
                      declined_first=m == 3)
                for m, cents in enumerate(monthly[:10], 1)]
    invoices += [Sale(_at(f"2025-{m:02d}-05 07:30"), cents, "pending")
                 for m, cents in ((11, monthly[10]), (12, monthly[11]))]
    base = {"given": None, "family": None, "landline": None, "birth": None}
    p.fixed["paris"] = {
        **base, "email": ORGANIZATION["email"], "phone": "06 71 22 33 44", "address": paris_home,
        "billing": ("8 rue de la Paroisse", "78000", "Versailles"), "created": p.created,
        "card": ORGANIZATION["cards"]["paris"], "sales": invoices}
    p.fixed["london"] = {
        **base, "trading": "Le Petit Bistro (Covent Garden)", "vat": "FR 74 912345678",
        "email": "Commandes@LePetitBistro.example ", "phone": "+33 6 71 22 33 44",
        "address": ("14 Maiden Lane", "WC2E 7NA", "London"), "billing": None,
        "created": _at("2024-04-02 07:10"), "card": ORGANIZATION["cards"]["london"],
        "sales": [_paid("2025-09-12 06:50", 18450, "transfer", after=timedelta(days=14)),
                  _paid("2025-10-10 06:50", 21230, "transfer", after=timedelta(days=30)),
                  _paid("2025-11-14 06:50", 19875, "transfer", after=timedelta(days=9)),
                  Sale(_at("2025-12-12 06:50"), 22640, "pending")]}
    return p


def parties(taken: set[str]) -> list[Party]:
    """The showcase parties (numbers 0 and 1); their identifiers are added to ``taken``."""
    shown = [_camille(), _bistro()]
    for p in shown:
        taken.update((p.email, p.mobile, *(r["card"] for r in p.fixed.values() if r.get("card"))))
    return shown


def values(shown: list[Party], keys: dict[str, dict[int, str]]) -> dict:
    """What the demo prints: identifiers to query the showcase customers by."""
    camille = shown[0]
    return {
        **PERSON, "card": PERSON["cards"]["paris"],
        "phones": {shop: camille.fixed[shop]["phone"] for shop in camille.shops},
        "records": {source: ids[0] for source, ids in keys.items() if 0 in ids},
        "organization": {
            **ORGANIZATION, "card": ORGANIZATION["cards"]["paris"],
            "records": {source: ids[1] for source, ids in keys.items() if 1 in ids}},
        "fuzzy": _fuzzy(shown, keys),
    }


def _fuzzy(parties: list[Party], keys: dict[str, dict[int, str]]) -> dict | None:
    """A person one of whose shop records only the probabilistic matcher links: queried by the
    e-mail of their first shop (Paris when there is one), with the ids of every record."""
    fuzzy = [p for p in parties if "fuzzy" in p.links.values()]
    if not fuzzy:
        return None
    p = next((p for p in fuzzy if p.shops[0] == "paris"), fuzzy[0])
    return {"name": p.name, "email": p.email, "shop": p.shops[0],
            "records": {source: ids[p.n] for source, ids in keys.items() if p.n in ids},
            "fuzzy": {shop: keys[shop][p.n] for shop, link in p.links.items() if link == "fuzzy"}}
