"""Who is asking: the Principal every request carries, whatever credential it came with.

A plain value with no web-framework import, so the policy layer can depend on it and be tested
without an HTTP stack. ``gateway.auth`` builds it from a token or an API key.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Kind = Literal["user", "service"]

#: The role that may do everything, steward actions included.
ADMIN_ROLE = "admin"
#: The role of a data subject: a customer looking at their own data (``customer_id``).
CUSTOMER_ROLE = "customer"
#: The purpose the static admin credentials (open mode, the admin token) declare by default,
#: and the only purpose of the built-in policy used without a `policy:` file.
ADMIN_PURPOSE = "administration"


@dataclass(frozen=True)
class Principal:
    """The authenticated caller of one request."""

    subject: str
    """Who: the token's ``sub``, ``apikey:<name>`` for an API key, ``admin-token`` for the
    static admin credential, ``anonymous`` in open mode."""
    roles: tuple[str, ...]
    """Role names as the credential grants them; the policy model says what each may see."""
    shop: str | None = None
    """The shop a shop-bound role works for (a source's ``shop`` label), if any."""
    region: str | None = None
    """The region a region-bound role works in, if any."""
    purpose: str | None = None
    """The purpose of use this request declared (token claim or ``Panorama-Purpose`` header)."""
    customer_id: str | None = None
    """For the ``customer`` role: the global customer id the credential is bound to."""
    kind: Kind = "user"
    """``user`` for a person's token, ``service`` for an API key or the static admin token."""

    def has_role(self, role: str) -> bool:
        return role in self.roles

    @property
    def is_admin(self) -> bool:
        return ADMIN_ROLE in self.roles
