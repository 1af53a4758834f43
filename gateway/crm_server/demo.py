"""The built-in seed served by ``panorama crm-server`` without ``--seed``: five contacts."""

from __future__ import annotations

from typing import Any


def _contact(i: int, first: str, last: str, email: str | None, phone: str | None, city: str,
             card: str | None) -> dict[str, Any]:
    return {"id": str(i), "createdAt": f"2026-01-0{i}T09:00:00.000Z",
            "properties": {"firstname": first, "lastname": last, "email": email, "phone": phone,
                           "city": city, "loyalty_card": card}}


def _engagement(i: int, when: str, contact: int, **props: str) -> dict[str, Any]:
    return {"id": str(i), "properties": {"hs_timestamp": when, **props},
            "contacts": [str(contact)]}


DEMO_SEED: dict[str, list[dict[str, Any]]] = {
    "contacts": [
        _contact(1, "Jean", "Dupont", "jean.dupont@example.com", "+33 6 12 34 56 78", "Lyon",
                 "LY-0001"),
        _contact(2, "Marie", "Durand", "Marie.Durand@example.com", "06 98 76 54 32", "Paris",
                 None),
        _contact(3, "Paul", "Martin", "paul.martin@example.org", None, "Lyon", "LY 0003"),
        _contact(4, "Chloé", "Leroy", None, "0033 7 11 22 33 44", "Lille", None),
        _contact(5, "Hugo", "Moreau", "hugo.moreau@example.com", "+33655443322", "Nantes",
                 "na-0005"),
    ],
    "notes": [
        _engagement(101, "2026-03-01T09:30:00.000Z", 1,
                    hs_note_body="Asked about gluten-free bread"),
        _engagement(102, "2026-04-02T17:05:00.000Z", 1,
                    hs_note_body="Complained about a late delivery"),
        _engagement(103, "2026-05-03T11:00:00.000Z", 2, hs_note_body="Ordered a wedding cake"),
        _engagement(104, "2026-06-04T08:45:00.000Z", 5, hs_note_body="Loyalty card lost"),
    ],
    "calls": [
        _engagement(201, "2026-04-03T10:15:00.000Z", 1, hs_call_title="Delivery follow-up",
                    hs_call_body="Apologised; offered a voucher", hs_call_direction="OUTBOUND"),
        _engagement(202, "2026-05-10T15:00:00.000Z", 3, hs_call_title="Catering quote",
                    hs_call_body="Wants 40 croissants for Friday", hs_call_direction="INBOUND"),
    ],
    "emails": [
        _engagement(301, "2026-05-04T08:00:00.000Z", 2, hs_email_subject="Your wedding cake",
                    hs_email_text="Tasting on Saturday at 10:00?", hs_email_direction="EMAIL"),
    ],
    "meetings": [
        _engagement(401, "2026-05-09T10:00:00.000Z", 2, hs_meeting_title="Cake tasting",
                    hs_meeting_body="Chose the lemon sponge"),
    ],
}
