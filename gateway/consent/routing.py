"""Where a correction request goes: the contact of the source that holds the value.

The config maps each source to a contact (an e-mail address, ``mailto:``, or an ``http(s)``
URL of a ticket form or API), with ``default`` for the sources it does not name. Routing is a
decision recorded with the request; sending it is someone else's job (see docs/audit.md).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

#: The key of the contact for every source that has none of its own.
DEFAULT_CONTACT = "default"
CONTACT = re.compile(r"(mailto:)?[^@\s:/]+@[^@\s/]+\.[^@\s/]+|https?://[^\s]+")


def route_correction(source: str, contacts: Mapping[str, str]) -> str | None:
    """The contact for ``source``: its own, else the default, else None (an admin routes it)."""
    return contacts.get(source) or contacts.get(DEFAULT_CONTACT) or None


def is_contact(value: object) -> bool:
    """Whether ``value`` is an e-mail address, a ``mailto:`` or an http(s) URL."""
    return isinstance(value, str) and CONTACT.fullmatch(value) is not None
