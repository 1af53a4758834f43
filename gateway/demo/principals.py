"""The demo's example callers: who each printed token makes you, one per example role.

The roles are those the demo's policy grants views to; what each role sees is the policy's
business, not this table's. Shops are named as queries name them (the source name).
"""

from __future__ import annotations

from gateway.principal import Principal

#: Lifetime of the printed tokens: a working day of trying the demo.
TOKEN_TTL_SECONDS = 12 * 3600


def demo_principals(customer_id: str | None) -> list[tuple[str, Principal]]:
    """(label, principal) per example role; the customer is bound to ``customer_id``.

    Each carries its role's usual purpose (the first the demo policy lists for it), so a token
    works without a Panorama-Purpose header; another purpose needs a token issued for it.
    """
    people = [
        ("finance", Principal("fanny@bakery.example", ("finance",), purpose="billing")),
        ("marketing", Principal("marc@bakery.example", ("marketing",), purpose="marketing")),
        ("support", Principal("sofia@bakery.example", ("support",), purpose="support")),
        ("shop staff (paris)", Principal("paul@bakery.example", ("shop_staff",), shop="paris",
                                         purpose="sale")),
        ("admin", Principal("ada@bakery.example", ("admin",), purpose="administration")),
    ]
    if customer_id is not None:
        people.append(("customer (Camille Martin)",
                       Principal("camille.martin", ("customer",), customer_id=customer_id,
                                 purpose="self_service")))
    return people
