"""The contract dataset: the same people and notes, loaded into every backend.

Values are deliberately untidy (case, spaces, phone formats) so that normalizing
conditions are really exercised. Twelve people, so that keys sort differently as
numbers and as strings ("10" < "9").
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

PEOPLE: list[dict] = [
    {"id": 1, "given_name": "Jean", "family_name": "Dupont", "email": "Jean.Dupont@Example.com ",
     "phone": "06 12 34 56 78", "city": "Paris", "card": "ab-12 34"},
    {"id": 2, "given_name": "Marie", "family_name": "Durand", "email": "marie.durand@example.com",
     "phone": "+33 6 98 76 54 32", "city": "PARIS", "card": "CD5678"},
    {"id": 3, "given_name": "Paul", "family_name": "DURAND-Smith", "email": "paul@example.org",
     "phone": "0033698765432", "city": "Lyon", "card": None},
    {"id": 4, "given_name": "Chloé", "family_name": "Martin", "email": None,
     "phone": "+33612345678", "city": "lyon", "card": "EF-0001"},
    {"id": 5, "given_name": "Ali", "family_name": "Ben Salah", "email": "ali@example.net",
     "phone": None, "city": "Marseille", "card": "GH 0002"},
    {"id": 6, "given_name": "O'Brien", "family_name": "Sean", "email": "sean.obrien@example.ie",
     "phone": "+353 85 123 4567", "city": "Dublin", "card": None},
    {"id": 7, "given_name": "Zoé", "family_name": "Leroy", "email": "zoe.leroy@example.com",
     "phone": "07.11.22.33.44", "city": "Lille", "card": "IJ0003"},
    {"id": 8, "given_name": "Hugo", "family_name": "Moreau", "email": "hugo.moreau@example.com",
     "phone": "0711223344", "city": "Nantes", "card": "KL0004"},
    {"id": 9, "given_name": "Emma", "family_name": "Petit", "email": "emma.petit@example.com",
     "phone": None, "city": "Paris", "card": "MN0005"},
    {"id": 10, "given_name": "Louis", "family_name": "Roux", "email": "louis.roux@example.com",
     "phone": "06-55-44-33-22", "city": "Bordeaux", "card": None},
    {"id": 11, "given_name": "Léa", "family_name": "Fournier", "email": "lea.fournier@example.com",
     "phone": "+33 6 55 44 33 22", "city": "Toulouse", "card": "OP0006"},
    {"id": 12, "given_name": "Tom", "family_name": "Girard", "email": "TOM.GIRARD@EXAMPLE.COM",
     "phone": "0655443322", "city": "Nice", "card": "QR0007"},
]

NOTES: list[dict] = [
    {"id": 101, "person_id": 1, "text": "Asked about gluten-free bread",
     "date": datetime(2026, 3, 1, 9, 30)},
    {"id": 102, "person_id": 1, "text": "Complained about a late delivery",
     "date": datetime(2026, 4, 2, 17, 5)},
    {"id": 103, "person_id": 2, "text": "Ordered a wedding cake", "date": datetime(2026, 5, 3, 11, 0)},
    {"id": 104, "person_id": 10, "text": "Loyalty card lost", "date": datetime(2026, 6, 4, 8, 45)},
]

#: Money paid by some people: amounts whose float sums are not exact (0.1 + 0.2), in an exact
#: column (NUMERIC), integer cents, and a float column (fee).
PAYMENTS: list[dict] = [
    {"id": 201, "person_id": 1, "status": "ok", "amount": Decimal("0.10"), "cents": 10,
     "fee": 0.1, "paid_at": datetime(2026, 1, 5, 10, 0)},
    {"id": 202, "person_id": 1, "status": "ok", "amount": Decimal("0.20"), "cents": 20,
     "fee": 0.2, "paid_at": datetime(2026, 2, 5, 10, 0)},
    {"id": 203, "person_id": 1, "status": "failed", "amount": Decimal("99.99"), "cents": 9999,
     "fee": 0.3, "paid_at": datetime(2026, 3, 5, 10, 0)},
    {"id": 204, "person_id": 2, "status": "ok", "amount": Decimal("1234.56"), "cents": 123456,
     "fee": 1.5, "paid_at": datetime(2026, 6, 30, 23, 59)},
    {"id": 205, "person_id": 2, "status": "ok", "amount": Decimal("0.01"), "cents": 1,
     "fee": 0.0, "paid_at": datetime(2026, 7, 1, 0, 0)},
]

#: Logical fields of the contract's customer entity (the same in every backend).
CUSTOMER_FIELDS = ("id", "given_name", "family_name", "email_0", "phone_0", "address_0_city",
                   "card_0")
#: Dataset column behind each logical field.
DATASET_COLUMN = {"id": "id", "given_name": "given_name", "family_name": "family_name",
                  "email_0": "email", "phone_0": "phone", "address_0_city": "city",
                  "card_0": "card"}
#: Logical fields of the contract's child entity (notes about a customer).
NOTE_FIELDS = ("id", "customer_key", "text", "date")
