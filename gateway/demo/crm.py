"""The CRM seed: contacts for many shop customers and some prospects, with their engagements.

The format is the one :mod:`gateway.crm_server` serves (HubSpot's objects): ids are numeric
strings, property values are strings, engagements list the contacts they are associated with.
Like HubSpot, the CRM keeps e-mails lower-cased; phones are as the agent typed them (E.164 or,
for French numbers, national). A contact may carry the card of the shop where the person
signed up in ``loyalty_card``: for some contacts it is the only thing that links them. Some
contacts unsubscribed from all e-mail (``hs_email_optout``, HubSpot's property).
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta

from gateway.demo import names
from gateway.demo.people import TODAY, Party, ascii_fold, phone_text

TYPES = ("notes", "calls", "emails", "meetings")
FIRST_ID = {"contacts": 1, "notes": 10_001, "calls": 20_001, "emails": 30_001, "meetings": 40_001}
COUNTRY_NAMES = {"FR": "France", "GB": "United Kingdom", "DE": "Germany"}
SHOP_PLACES = {"paris": "Rue Cler", "london": "Marylebone", "berlin": "Kastanienallee"}
HOME_SHOPS = {"FR": "paris", "GB": "london", "DE": "berlin"}
ENGAGEMENTS_PER_CONTACT = {0: 25, 1: 30, 2: 20, 3: 12, 4: 8, 5: 5}
TYPE_WEIGHTS = (40, 25, 25, 10)
OPT_OUT_EVERY = 11  # one contact in about this many has unsubscribed from all e-mail
# Engagement type -> (its texts, (title property, body property)).
TEXTS = {"calls": (names.CALLS, ("hs_call_title", "hs_call_body")),
         "emails": (names.EMAILS, ("hs_email_subject", "hs_email_text")),
         "meetings": (names.MEETINGS, ("hs_meeting_title", "hs_meeting_body"))}


def seed(rng: random.Random, parties: list[Party],
         cards: dict[int, str]) -> tuple[dict, dict[int, str]]:
    """The seed document, and each party's contact id."""
    doc: dict[str, list[dict]] = {"contacts": [], **{t: [] for t in TYPES}}
    keys: dict[int, str] = {}
    fixed = [p for p in parties if p.crm and "crm" in p.fixed]
    drawn = [p for p in parties if p.crm and "crm" not in p.fixed]
    rng.shuffle(drawn)  # contacts were created in no particular order of the shops' customers
    for p in fixed + drawn:
        contact_id = str(FIRST_ID["contacts"] + len(doc["contacts"]))
        keys[p.n] = contact_id
        if "crm" in p.fixed:
            spec = p.fixed["crm"]
            properties, created, engagements = (spec["properties"], spec["createdAt"],
                                                spec["engagements"])
        else:
            moment = min(p.created + timedelta(days=rng.randint(0, 600)),
                         TODAY - timedelta(days=10))
            properties, created = _properties(rng, p, cards.get(p.n)), _stamp(moment)
            engagements = _engagements(rng, p, moment)
        doc["contacts"].append({"id": contact_id, "properties": properties, "createdAt": created})
        for kind, when, props in engagements:
            doc[kind].append({"id": str(FIRST_ID[kind] + len(doc[kind])),
                              "properties": {"hs_timestamp": when, **props},
                              "createdAt": when.replace("Z", ".000Z"), "contacts": [contact_id]})
    return doc, keys


def _properties(rng: random.Random, p: Party, card: str | None) -> dict[str, str | None]:
    given, family = p.given or "", p.family or ""
    if rng.random() < 0.2:  # typed by an agent without accents
        given, family = ascii_fold(given), ascii_fold(family)
    email = phone = mobile = None
    if p.crm in ("email", "prospect"):
        email = p.email
    elif p.crm == "phone" and rng.random() < 0.5:
        email = p.alt_email
    if p.crm == "phone" or (p.crm in ("email", "prospect") and rng.random() < 0.6):
        style = "spaced" if p.country == "FR" and rng.random() < 0.5 else "e164"
        if rng.random() < 0.7:
            phone = phone_text(p.country, p.mobile, style)
        else:
            mobile = phone_text(p.country, p.mobile, style)
    written_card = None
    if card and (p.crm == "card" or rng.random() < 0.3):
        written_card = rng.choice((card, card.replace("-", " "), card.replace(" ", ""),
                                   card.replace("-", "").lower()))
    street = city = postcode = country = None
    if p.address and rng.random() < 0.4:
        (street, postcode, city), country = p.address, COUNTRY_NAMES[p.country]
    company = None
    if p.crm == "prospect" and rng.random() < 0.3:
        company = rng.choice(names.EVENT_COMPANIES)
    return {"firstname": given or None, "lastname": family or None, "email": email,
            "phone": phone, "mobilephone": mobile, "address": street, "city": city,
            "zip": postcode, "country": country, "company": company,
            "loyalty_card": written_card,
            "lifecyclestage": "lead" if p.crm == "prospect" else "customer",
            # A few unsubscribed from every e-mail (chosen without the generator, whose draws
            # would shift): the consent section makes that an objection to marketing.
            "hs_email_optout": "true" if p.n % OPT_OUT_EVERY == 3 else None,
            **p.overrides.get("crm", {})}  # a switchboard or a placeholder (people.py)


def _engagements(rng: random.Random, p: Party, since: datetime) -> list[tuple[str, str, dict]]:
    count = rng.choices(list(ENGAGEMENTS_PER_CONTACT),
                        weights=list(ENGAGEMENTS_PER_CONTACT.values()))[0]
    days = max(1, (TODAY - since).days - 1)
    shop = SHOP_PLACES[p.shops[0] if p.shops else HOME_SHOPS[p.country]]
    words = {"given": p.given or "", "shop": shop}
    out = []
    for _ in range(count):
        kind = rng.choices(TYPES, weights=TYPE_WEIGHTS)[0]
        day = since + timedelta(days=rng.randrange(days) + 1)  # in office hours
        moment = day.replace(hour=rng.randint(8, 18), minute=rng.randint(0, 59))
        when = moment.strftime("%Y-%m-%dT%H:%M:%SZ")
        if kind == "notes":
            props = {"hs_note_body": rng.choice(names.NOTES).format(**words)}
        else:
            texts, (title_property, body_property) = TEXTS[kind]
            title, body = rng.choice(texts)
            props = {title_property: title, body_property: body.format(**words)}
            if kind == "calls":
                props["hs_call_direction"] = rng.choice(("INBOUND", "OUTBOUND"))
            elif kind == "emails":
                props["hs_email_direction"] = rng.choice(("EMAIL", "EMAIL", "INCOMING_EMAIL"))
        out.append((kind, when, props))
    return sorted(out, key=lambda e: e[1])


def _stamp(moment: datetime) -> str:
    """HubSpot's timestamp form: 2025-06-14T09:30:00.000Z."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.000Z")
