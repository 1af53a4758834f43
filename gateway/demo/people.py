"""The demo's population: who shops where, and how each shop and the CRM wrote them down.

Every value (dates included) comes from the ``random.Random`` passed in and a fixed "today"
(:data:`TODAY`), never from the clock, so a seed always draws the same world.

How records of one person relate:

- Each shop knows a person under its own id and its own loyalty card. A person who shops in
  several shops is linked by the e-mail (written with other case or spaces; the names may lose
  their accents or carry a typo), or only by the phone number (another e-mail or none,
  the number written in another format).
- Cards never link two shops (each shop issues its own, with its own format). The CRM's
  ``loyalty_card`` property holds the card of the shop where the person signed up, written
  its own way, so some CRM contacts are linked only by their card.
- Fuzzy: about one multi-shop person in twenty changed e-mail and phone before signing up in
  another shop (moved, new provider), and that shop wrote the name slightly differently (a
  typo, accents dropped, or given and family name swapped in London's full name). Only the
  birth date (Paris, Berlin) or the home address (same house, written another way) says it is
  the same person: only the probabilistic matcher (``panorama index``) links that record.
- Traps: namesakes (same given and family name, their own e-mail and phone) must stay apart.
- Hostile inputs, which must never link anyone: placeholder e-mails and phones, a company
  switchboard number given by several employees, a family's home phone, and one card number
  that two shops issued to two different people (see :func:`_hostile`).
"""

from __future__ import annotations

import itertools
import random
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from gateway.demo import names

TODAY = datetime(2026, 1, 1, tzinfo=UTC)
SHOP_COUNTRY = {"paris": "FR", "london": "GB", "berlin": "DE"}
CROWDED = 1000  # failed draws of a unique value before its pool counts as used up
HOME_SHOP = {country: shop for shop, country in SHOP_COUNTRY.items()}
CALLING_CODE = {"FR": "33", "GB": "44", "DE": "49"}
EMAIL_DOMAINS = {"FR": ("example.fr", "example.net"), "GB": ("example.co.uk", "example.com"),
                 "DE": ("example.de", "example.org")}
ORDER_MAILBOX = {"FR": "commandes", "GB": "orders", "DE": "bestellung"}

# Shares of the population (the showcase people are part of it).
ALL_SHOPS_SHARE, TWO_SHOPS_SHARE, ORG_SHARE, CRM_SHARE, PROSPECT_SHARE = 0.10, 0.25, 0.03, 0.6, 0.12
# How a second (or third) shop's record links to the first: weights.
SHOP_LINKS = {"email": 72, "typo": 10, "phone": 18}
CRM_LINKS = {"email": 72, "phone": 16, "card": 12}
# Multi-shop people whose record in one other shop is linked only fuzzily.
FUZZY_SHARE = 0.05
# Hostile values: never evidence of who is who.
# Placeholders: value -> source -> as written there.
PLACEHOLDER_EMAILS = {
    "noemail@bakery.example": {"paris": "noemail@bakery.example",
                               "london": "NoEmail@Bakery.example",
                               "berlin": "noemail@bakery.example"},
    "none@none.fr": {"paris": "none@none.fr", "crm": "none@none.fr"}}
PLACEHOLDER_PHONES = {"0000000000": {"paris": "0000000000", "berlin": "0000000000"},
                      "0600000000": {"paris": "06 00 00 00 00", "crm": "0600000000"}}
SWITCHBOARD = "145512000"  # a Paris office's number (national significant number)
SWITCHBOARD_CARRIERS = {"paris": 5, "crm": 3}  # more than the matcher's shared_key_limit (6)
# Street words a till abbreviates, as the matcher reads them back (it does not know rue -> r.
# nor Street -> St: the names of the street then sort apart).
STREET_ABBREVIATIONS = (("avenue ", "av. "), ("boulevard ", "bd "), ("straße", "str."),
                        ("Straße", "Str."), (" Road", " Rd"))

# Phone formats: a style name -> how to write (country, national number) in it.
NATIONAL_STYLES = {"FR": ("spaced", "spaced", "compact", "dots"), "GB": ("spaced", "compact"),
                   "DE": ("spaced", "slash", "compact")}
INTERNATIONAL_STYLES = ("e164", "plus", "plus", "double_zero")
ASCII_FOLD = str.maketrans({"ß": "ss", "ı": "i", "ø": "o", "æ": "ae", "œ": "oe"})
UMLAUTS = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "Ä": "Ae", "Ö": "Oe", "Ü": "Ue"})


@dataclass(frozen=True)
class Payment:
    at: datetime
    cents: int
    ok: bool
    method: str  # card | contactless | cash | transfer; each shop names them its own way


@dataclass(frozen=True)
class Sale:
    """One invoice or order, with its payment attempts and an optional refund."""

    at: datetime
    cents: int
    state: str  # paid | pending | cancelled
    payments: tuple[Payment, ...] = ()
    refund: tuple[datetime, int, int] | None = None  # (when, cents, index of the reason)


@dataclass
class Party:
    """A person or company of the world, with what each shop and the CRM know of it."""

    n: int
    kind: str = "PERSON"
    country: str = "FR"
    given: str | None = None
    family: str | None = None
    trading: str | None = None  # an organization's name on the till
    legal: str | None = None
    vat: str | None = None
    email: str = ""
    alt_email: str | None = None  # a second address, used where only the phone links
    mobile: str = ""  # national significant number, e.g. "612345678"
    landline: str | None = None
    birth: str | None = None
    address: tuple[str, str, str] | None = None  # (line, postcode, city)
    billing: tuple[str, str, str] | None = None
    created: datetime = TODAY
    shops: list[str] = field(default_factory=list)  # first: where the person signed up
    links: dict[str, str] = field(default_factory=dict)  # other shop -> email|typo|phone|fuzzy
    crm: str | None = None  # email | phone | card | prospect; None: not in the CRM
    fixed: dict[str, dict] = field(default_factory=dict)  # hand-written shop records
    overrides: dict[str, dict] = field(default_factory=dict)  # source -> hostile field values

    @property
    def name(self) -> str:
        return self.legal or f"{self.given} {self.family}"


def populate(rng: random.Random, parties: list[Party], customers: int,
             taken: set[str]) -> tuple[list[tuple[int, int]], list[dict]]:
    """Add the random customers and CRM prospects; return the namesake pairs (traps) and the
    hostile cases (see :func:`_hostile`).

    ``parties`` holds the showcase parties already; they count towards every share.
    """
    shown = [p for p in parties if p.kind == "PERSON"]
    shown_orgs = len(parties) - len(shown)
    catalogue = [(country, *org) for i in range(4) for country in ("FR", "GB", "DE")
                 for org in names.ORGANIZATIONS[country][i:i + 1]]  # alternate countries
    n_orgs = min(max(2, round(customers * ORG_SHARE)), shown_orgs + len(catalogue))
    n_people = customers - n_orgs
    sizes = []
    for size, share in ((3, ALL_SHOPS_SHARE), (2, TWO_SHOPS_SHARE)):
        sizes += [size] * (round(n_people * share) - sum(len(p.shops) == size for p in shown))
    sizes += [1] * (n_people - len(shown) - len(sizes))
    rng.shuffle(sizes)
    first = len(parties)
    for size in sizes:
        country = rng.choices(("FR", "GB", "DE"), weights=(40, 30, 30))[0]
        p = Party(len(parties), country=country, given=rng.choice(names.GIVEN_NAMES[country]),
                  family=rng.choice(names.FAMILY_NAMES[country]))
        others = [s for s in SHOP_COUNTRY if s != HOME_SHOP[country]]
        rng.shuffle(others)
        p.shops = [HOME_SHOP[country], *others[:size - 1]]
        parties.append(p)
    traps = _namesakes(rng, parties[first:], max(3, customers // 80))
    for country, trading, legal in catalogue[:n_orgs - shown_orgs]:
        parties.append(Party(len(parties), "ORGANIZATION", country, trading=trading, legal=legal,
                             shops=[HOME_SHOP[country]]))
    for _ in range(round(customers * PROSPECT_SHARE)):
        country = rng.choice(("FR", "GB", "DE"))
        parties.append(Party(len(parties), country=country, crm="prospect",
                             given=rng.choice(names.GIVEN_NAMES[country]),
                             family=rng.choice(names.FAMILY_NAMES[country])))
    # A prospect who shares a customer's name, and is someone else.
    prospect, twin = parties[-1], rng.choice(parties[first:first + len(sizes)])
    prospect.country, prospect.given, prospect.family = twin.country, twin.given, twin.family
    traps.append((twin.n, prospect.n))
    for p in parties[first:]:
        _details(rng, p, taken)
        for shop in p.shops[1:]:
            p.links[shop] = rng.choices(list(SHOP_LINKS), weights=list(SHOP_LINKS.values()))[0]
        if p.kind == "PERSON" and p.crm is None and rng.random() < CRM_SHARE:
            p.crm = rng.choices(list(CRM_LINKS), weights=list(CRM_LINKS.values()))[0]
    reserved = {n for pair in traps for n in pair}  # namesakes stay plain namesakes
    _fuzzy(rng, parties[first:first + len(sizes)], reserved)
    hostile = _hostile(rng, parties[first:], reserved, taken)
    return traps, hostile


def _fuzzy(rng: random.Random, people: list[Party], reserved: set[int]) -> None:
    """Make one other shop of some multi-shop people a fuzzy link (see the module docstring).

    At least one of them signed up in Paris (the demo queries them by their Paris e-mail).
    """
    multi = [p for p in people if len(p.shops) > 1]
    # One word each: London splits its full name at the last space, and a typo next to an
    # apostrophe (O'Brien -> O'rien) splits a name into other words.
    candidates = [p for p in multi if p.n not in reserved
                  and (p.given or "").isalpha() and (p.family or "").isalpha()]
    count = min(len(candidates), max(1, round(len(multi) * FUZZY_SHARE)))
    chosen = rng.sample(candidates, count)
    paris = [p for p in candidates if p.shops[0] == "paris"]
    if paris and not any(p.shops[0] == "paris" for p in chosen):
        chosen[0] = rng.choice(paris)
    for p in chosen:
        p.links[rng.choice(p.shops[1:])] = "fuzzy"


def _hostile(rng: random.Random, people: list[Party], reserved: set[int],
             taken: set[str]) -> list[dict]:
    """Plant values that look like identifiers and say nothing about who is who.

    Each carrier is a person known to one source only (a one-shop customer outside the CRM,
    or a CRM prospect), so that the truth of every other customer is untouched. Returns the
    cases: ``{"kind", "value", "shared_key", "carriers": [(party, source), ...]}``;
    ``shared_key`` says whether the value is a valid, non-placeholder key that a resolution
    by keys alone (without the matcher's guards) would follow.
    """
    pools: dict[str, list[Party]] = {}
    for p in people:
        if p.kind == "PERSON" and p.n not in reserved and not p.links and (
                (p.crm is None and len(p.shops) == 1) or (p.crm == "prospect" and not p.shops)):
            pools.setdefault(p.shops[0] if p.shops else "crm", []).append(p)
    for pool in pools.values():
        rng.shuffle(pool)

    def take(source: str, count: int, country: str | None = None,
             apart: Iterable[Party] = ()) -> list[Party]:
        """Up to ``count`` carriers, with given names unlike each other's (and ``apart``'s)."""
        out: list[Party] = []
        starts = {ascii_fold(p.given or "")[:3].lower() for p in apart}
        for p in list(pools.get(source, ())):
            start = ascii_fold(p.given or "")[:3].lower()
            if len(out) < count and start not in starts and country in (None, p.country):
                pools[source].remove(p)
                starts.add(start)
                out.append(p)
        return out

    cases: list[dict] = []

    def case(kind: str, value: str, shared: bool, carriers: list[tuple[Party, str]]) -> None:
        if len(carriers) >= 2:
            cases.append({"kind": kind, "value": value, "shared_key": shared,
                          "carriers": [(p.n, source) for p, source in carriers]})

    # A card number two shops issued, to two people with other names and birth dates.
    pair = take("paris", 1)
    pair += take("berlin", 1, apart=pair)
    if len(pair) == 2 and pair[0].birth != pair[1].birth:
        card = card_number(rng, "paris", taken)
        for p, shop in zip(pair, ("paris", "berlin"), strict=True):
            p.overrides[shop] = {"card": card}
        case("card", card, True, list(zip(pair, ("paris", "berlin"), strict=True)))
    # A family sharing its home phone and address: one family name, other given names.
    family = take("berlin", 3)
    if len(family) >= 2:
        home = family[0]
        landline = _unique(taken, [], rng, lambda: "30" + rng.choice("2345689") + _digits(rng, 7))
        written = f"0{landline[:2]} {landline[2:]}"  # 030 44712236
        parent = rng.randint(1958, 1975)
        years = [parent, parent + rng.choice((-3, -2, -1, 1, 2, 3)), parent + rng.randint(26, 32)]
        for p, year in zip(family, years, strict=False):  # parents, then their child
            p.family, p.address = home.family, home.address
            p.birth = date(year, rng.randint(1, 12), rng.randint(1, 28)).isoformat()
            if p is not home:
                _emails(rng, p, taken)
            p.overrides["berlin"] = {"phone": written}
        case("household", written, True, [(p, "berlin") for p in family])
    # A company switchboard: employees give the office number, in the shop and in the CRM.
    office = phone_text("FR", SWITCHBOARD, "spaced")
    staff = take("paris", SWITCHBOARD_CARRIERS["paris"], "FR")
    crm_staff = take("crm", SWITCHBOARD_CARRIERS["crm"], "FR", apart=staff)
    for p in staff:
        p.overrides["paris"] = {"phone": phone_text("FR", SWITCHBOARD, rng.choice(
            ("spaced", "compact", "dots", "plus")))}
    for p in crm_staff:
        p.overrides["crm"] = {"phone": office, "company": names.SWITCHBOARD_COMPANY,
                              "mobilephone": phone_text(p.country, p.mobile, "e164")}
    case("switchboard", office, True, [(p, "paris") for p in staff]
         + [(p, "crm") for p in crm_staff])
    # Placeholders typed to get past a mandatory field.
    for field_name, values in (("email", PLACEHOLDER_EMAILS), ("phone", PLACEHOLDER_PHONES)):
        for value, forms in values.items():
            carriers = [(p, source) for source in forms for p in take(source, 1)]
            for p, source in carriers:
                p.overrides[source] = {field_name: forms[source]}
                if source == "crm" and field_name == "phone":
                    p.overrides[source]["mobilephone"] = None
            case(f"placeholder_{field_name}", value, False, carriers)
    return cases


def _namesakes(rng: random.Random, people: list[Party], count: int) -> list[tuple[int, int]]:
    """Give ``count`` single-shop people the name of someone else of their country."""
    traps: list[tuple[int, int]] = []
    singles = [p for p in people if len(p.shops) == 1]
    rng.shuffle(singles)
    used: set[int] = set()
    for twin in singles:
        if len(traps) == count:
            break
        # A few random draws find someone of the same country (a shuffle of everyone per trap
        # made large worlds quadratic); give up on this twin if they do not.
        original = next((p for p in (rng.choice(people) for _ in range(64))
                         if p.country == twin.country and p.n != twin.n and p.n not in used), None)
        if original is None or twin.n in used:
            continue
        used.update((twin.n, original.n))
        twin.given, twin.family = original.given, original.family
        if rng.random() < 0.5:  # a visitor in another shop, rather than a neighbour
            twin.shops = [rng.choice([s for s in SHOP_COUNTRY if s != HOME_SHOP[twin.country]])]
        traps.append((original.n, twin.n))
    return traps


def _details(rng: random.Random, p: Party, taken: set[str]) -> None:
    """Draw the e-mails, phones, birth date, addresses and sign-up date of a new party."""
    if p.kind == "PERSON":
        p.birth = date(rng.randint(1946, 2005), rng.randint(1, 12), rng.randint(1, 28)).isoformat()
    _emails(rng, p, taken)
    p.mobile = _unique(taken, [], rng, lambda: _mobile(rng, p.country))
    if p.country == "GB" and rng.random() < 0.3:
        p.landline = _unique(taken, [], rng, lambda: "20" + rng.choice("378") + _digits(rng, 7))
    p.address = _address(rng, p.country)
    if p.country == "FR" and (p.kind == "ORGANIZATION" or rng.random() < 0.2):
        p.billing = _address(rng, p.country)
    if p.kind == "ORGANIZATION":
        p.vat = _vat(rng, p.country)
    signed_up = TODAY - timedelta(days=rng.randint(400, 1800))
    p.created = signed_up.replace(hour=rng.randint(8, 18), minute=rng.randint(0, 59))


def _emails(rng: random.Random, p: Party, taken: set[str]) -> None:
    """Draw the party's e-mail (and a person's second address) from its name."""
    domains: tuple[str, ...] = EMAIL_DOMAINS[p.country]
    if p.kind == "ORGANIZATION":
        local = [ORDER_MAILBOX[p.country]]
        domains = (f"{_slug(p.trading or '')}.example",)
    else:
        g, f = _slug(p.given or ""), _slug(p.family or "")
        local = [f"{g}.{f}", f"{g[0]}{f}", f"{f}.{g}", f"{g}{f[0]}"]
        p.alt_email = _unique(taken, [f"{g[0]}.{f}@{d}" for d in ("example.com", "example.net")],
                              rng)
    p.email = _unique(taken, [f"{lp}@{d}" for lp in local for d in domains], rng)


def _unique(taken: set[str], candidates: list[str], rng: random.Random, draw=None,
            wide=None) -> str:
    for value in candidates:
        if value not in taken:
            taken.add(value)
            return value
    for attempt in itertools.count():
        # A pool nearly used up (a common name's e-mails, a shop's short card numbers in a very
        # large world) switches to a wider draw; small worlds never get here, so stay as seeded.
        crowded = attempt >= CROWDED
        if draw is not None:
            value = wide() if crowded and wide is not None else draw()
        else:
            local, _, domain = candidates[0].partition("@")
            value = f"{local}{rng.randint(100, 999_999) if crowded else rng.randint(2, 99)}@{domain}"
        if value not in taken:
            taken.add(value)
            return value
    raise AssertionError("unreachable")


def _digits(rng: random.Random, n: int) -> str:
    return "".join(rng.choice("0123456789") for _ in range(n))


def _mobile(rng: random.Random, country: str) -> str:
    if country == "FR":  # 069x and 0639 are not mobile ranges
        return rng.choice(["6" + rng.choice("01245678"), "7" + rng.choice("5678")]) + _digits(rng, 7)
    if country == "GB":
        return "7" + rng.choice(("80", "84", "86", "88", "90", "93", "95", "97")) + _digits(rng, 7)
    prefix, length = rng.choice((("151", 8), ("160", 7), ("170", 7), ("171", 7), ("176", 8)))
    return prefix + _digits(rng, length)


def phone_text(country: str, nsn: str, style: str) -> str:
    """A number written the way people type it: ``06 12 34 56 78``, ``+44 7900 123456``..."""
    if country == "FR":
        spaced = "0" + nsn[0] + "".join(f" {nsn[i:i + 2]}" for i in range(1, 9, 2))
    elif country == "GB":
        spaced = f"0{nsn[:2]} {nsn[2:6]} {nsn[6:]}" if nsn[0] == "2" else f"0{nsn[:4]} {nsn[4:]}"
    else:
        spaced = f"0{nsn[:3]} {nsn[3:]}"
    code = CALLING_CODE[country]
    return {"spaced": spaced, "compact": "0" + nsn, "dots": spaced.replace(" ", "."),
            "slash": spaced.replace(" ", "/", 1), "e164": f"+{code}{nsn}",
            "plus": f"+{code} {spaced[1:]}", "double_zero": f"00{code} {spaced[1:]}"}[style]


def _address(rng: random.Random, country: str) -> tuple[str, str, str]:
    street, postcode, city = rng.choice(names.STREETS[country])
    number = rng.randint(1, 140)
    line = f"{street} {number}" if country == "DE" else f"{number} {street}"
    return line, postcode, city


def _vat(rng: random.Random, country: str) -> str:
    if country == "FR":
        siren = rng.randint(300_000_000, 999_999_999)
        return f"FR{(12 + 3 * (siren % 97)) % 97:02d}{siren}"
    return country + _digits(rng, 9)


def _slug(text: str) -> str:
    return "".join(c for c in ascii_fold(text.translate(UMLAUTS)).lower() if c.isalnum())


def ascii_fold(text: str) -> str:
    """The text without accents, as typed on a keyboard that has none."""
    decomposed = unicodedata.normalize("NFKD", text.translate(ASCII_FOLD))
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def _plain(text: str, rng: random.Random) -> str:
    if any(c in text for c in "äöüÄÖÜ") and rng.random() < 0.5:
        return ascii_fold(text.translate(UMLAUTS))  # Müller -> Mueller
    return ascii_fold(text)


def typo(text: str, rng: random.Random) -> str:
    """One slip of the finger: Dupont -> Dupond, Martin -> Matrin, Schmidt -> Schmit."""
    if text[-1] in "td":
        return text[:-1] + ("d" if text[-1] == "t" else "t")
    spots = [i for i in range(1, len(text) - 1) if text[i:i + 2].isalpha() and text[i] != text[i + 1]]
    if not spots:
        return text + text[-1]
    i = rng.choice(spots)
    return [text[:i] + text[i] + text[i:], text[:i] + text[i + 1] + text[i] + text[i + 2:],
            text[:i] + text[i + 1:]][rng.randrange(3)]


def email_variant(email: str, rng: random.Random) -> str:
    """The same address as someone typed it: other case, a stray space."""
    local, _, domain = email.partition("@")
    titled = ".".join(part.capitalize() for part in local.split(".")) + "@" + domain.capitalize()
    return rng.choice((titled, email.upper(), titled, email + " ", " " + email,
                       email.upper() + " "))


def shop_rows(rng: random.Random, parties: list[Party], shop: str,
              taken: set[str]) -> list[tuple[Party, dict]]:
    """What ``shop`` knows of each of its customers, in its id order (sign-up order)."""
    rows = [(p, p.fixed.get(shop) or _record(rng, p, shop, taken)) for p in parties
            if shop in p.shops]
    rows.sort(key=lambda row: (not row[0].fixed, row[1]["created"], row[0].n))
    return rows


def _record(rng: random.Random, p: Party, shop: str, taken: set[str]) -> dict:
    link = p.links.get(shop, "first")
    local = SHOP_COUNTRY[shop] == p.country
    given, family = p.given, p.family
    full_name = None  # London's full name, when it is not "given family"
    if p.kind == "PERSON":
        assert given and family
        if link == "fuzzy":
            given, family, full_name = _fuzzy_name(rng, given, family, shop)
        elif not local and rng.random() < 0.6:
            given, family = _plain(given, rng), _plain(family, rng)
        if link == "typo":
            if rng.random() < 0.7:
                family = typo(family, rng)
            else:
                given = typo(given, rng)
        case = rng.random()
        if link != "first" and case < 0.1:
            given, family = given.upper(), family.upper()
        elif link != "first" and case < 0.15:
            given, family = given.lower(), family.lower()
    if link == "first":
        email: str | None = p.email if rng.random() < 0.8 else email_variant(p.email, rng)
    elif link == "phone":
        email = p.alt_email if rng.random() < 0.6 else None
    elif link == "fuzzy":  # a new address, at the new provider
        g, f = _slug(p.given or ""), _slug(p.family or "")
        email = _unique(taken, [f"{lp}@{d}" for lp in (f"{g}.{f}", f"{g}_{f}", f"{f}{g[0]}")
                                for d in EMAIL_DOMAINS[SHOP_COUNTRY[shop]]], rng)
    else:
        email = email_variant(p.email, rng) if rng.random() < 0.7 else p.email
    styles = NATIONAL_STYLES[p.country] if local and rng.random() < 0.85 else INTERNATIONAL_STYLES
    phone = None
    if link == "fuzzy":  # a new number, of the shop's country
        country = SHOP_COUNTRY[shop]
        number = _unique(taken, [], rng, lambda: _mobile(rng, country))
        phone = phone_text(country, number, rng.choice(NATIONAL_STYLES[country]))
    elif link in ("first", "phone") or rng.random() < 0.5:
        phone = phone_text(p.country, p.mobile, rng.choice(styles))
    created = p.created
    if link != "first":
        created = min(p.created + timedelta(days=rng.randint(20, 900)), TODAY - timedelta(days=40))
    needs_card = p.crm == "card" and shop == p.shops[0]
    address = p.address if local and link == "first" else None
    birth = p.birth if link == "first" or rng.random() < 0.3 else None
    if link == "fuzzy":
        # What says it is the same person: the birth date where the shop keeps one, and the
        # home address where the other record has no birth date (London keeps none).
        birth = p.birth if shop != "london" else None
        if p.address and (shop == "london" or p.shops[0] == "london" or rng.random() < 0.3):
            address = address_variant(p.address, rng)
    record = {
        "given": given, "family": family, "email": email, "phone": phone,
        "landline": phone_text("GB", p.landline, "spaced") if p.landline and local else None,
        "address": address,
        "billing": p.billing if local and link == "first" else None,
        "birth": birth,
        "created": created,
        "card": card_number(rng, shop, taken) if needs_card or rng.random() < 0.88 else None,
        "sales": sales(rng, p.kind == "ORGANIZATION", created, link == "first"),
    }
    if full_name:
        record["full_name"] = full_name
    record.update(p.overrides.get(shop, {}))
    return record


def _fuzzy_name(rng: random.Random, given: str, family: str,
                shop: str) -> tuple[str, str, str | None]:
    """The name as the shop of a fuzzy link wrote it: a typo, accents dropped, or (London's
    full name) family name first. Returns (given, family, full name or None)."""
    ways = ["typo"]
    if ascii_fold(given + family) != given + family:
        ways.append("accents")
    if shop == "london":
        ways.append("swapped")
    way = rng.choice(ways)
    if way == "accents":
        return _plain(given, rng), _plain(family, rng), None
    if way == "swapped":
        return given, family, f"{family} {given}"
    # A slip that keeps the names in the same alphabetical order: the matcher compares the
    # words of a name sorted (so that swapped names agree), and Heike Hbuer sorts the other way.
    def order(g: str, f: str) -> bool:
        return ascii_fold(g).casefold() < ascii_fold(f).casefold()

    for _ in range(6):
        slipped = (given, typo(family, rng)) if rng.random() < 0.7 else (typo(given, rng), family)
        if order(*slipped) == order(given, family):
            return *slipped, None
    return given, family + family[-1], None  # Huberr


def address_variant(address: tuple[str, str, str], rng: random.Random) -> tuple[str, str, str]:
    """The same home as another till wrote it: 12 av. Bosquet, 12, rue Cler, TORSTRASSE 5..."""
    line, postcode, city = address
    for long, short in STREET_ABBREVIATIONS:
        if long in line and rng.random() < 0.6:
            return line.replace(long, short, 1), postcode, city
    if line[0].isdigit() and rng.random() < 0.4:
        number, _, rest = line.partition(" ")
        return f"{number}, {rest}", postcode, city
    return line.upper(), postcode, city.upper()


def card_number(rng: random.Random, shop: str, taken: set[str]) -> str:
    """A new card of ``shop``: PAR-4821-0093, LDN 5512 3300, B-00042."""
    draw = {"paris": lambda: f"PAR-{rng.randint(1000, 9999)}-{rng.randint(0, 9999):04d}",
            "london": lambda: f"LDN {rng.randint(1000, 9999)} {rng.randint(0, 9999):04d}",
            "berlin": lambda: f"B-{rng.randint(100, 99999):05d}"}[shop]
    return _unique(taken, [], rng, draw, wide=lambda: f"B-{rng.randint(100_000, 9_999_999)}")


def sales(rng: random.Random, wholesale: bool, since: datetime, regular: bool) -> list[Sale]:
    """A customer's purchases since ``since``: paid at the till, or invoiced (wholesale)."""
    count = rng.randint(8, 20) if wholesale else rng.randint(1, 12) if regular else rng.randint(1, 3)
    start = max(since, TODAY - timedelta(days=730))
    days = max(1, (TODAY - start).days - 1)
    out = []
    for day in sorted(rng.randrange(days) for _ in range(count)):
        moment = start + timedelta(days=day + 1)
        at = datetime(moment.year, moment.month, moment.day, rng.randint(7, 19), rng.randint(0, 59),
                      tzinfo=UTC)
        if wholesale:
            cents = rng.randrange(8000, 90000)
        else:
            r = rng.random()
            cents = rng.randrange(120, 1500, 10) if r < 0.6 else rng.randrange(1500, 4500, 10) \
                if r < 0.9 else rng.randrange(2500, 28000, 50)
        state = rng.choices(("paid", "pending", "cancelled"),
                            weights=(75, 20, 5) if wholesale else (88, 5, 7))[0]
        method = "transfer" if wholesale else rng.choice(("card", "card", "contactless", "cash"))
        delay = timedelta(days=rng.randint(5, 45)) if wholesale else timedelta(minutes=rng.randint(0, 3))
        payments: list[Payment] = []
        if state == "paid" and at + delay >= TODAY:
            state = "pending"  # not paid yet on the demo's "today"
        if state == "paid":
            if rng.random() < 0.04:  # declined first, paid on the second try
                payments.append(Payment(at + delay, cents, False, method))
                delay += timedelta(minutes=2)
            payments.append(Payment(at + delay, cents, True, method))
        elif state == "pending" and rng.random() < 0.3 and at + delay < TODAY:
            payments.append(Payment(at + delay, cents, False, method))
        refund = None
        if state == "paid" and rng.random() < 0.04:
            when = payments[-1].at + timedelta(days=rng.randint(1, 10))
            part = cents if rng.random() < 0.5 else max(10, cents * rng.randint(2, 6) // 100 * 10)
            if when < TODAY:
                refund = (when, part, rng.randrange(4))
        out.append(Sale(at, cents, state, tuple(payments), refund))
    return out


def decimal_text(cents: int) -> str:
    """Cents as exact decimal text: 1250 -> '12.50'."""
    return f"{cents // 100}.{cents % 100:02d}"


