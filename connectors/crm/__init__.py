"""The CRM connector: HubSpot's CRM API (v3 objects and properties, v4 associations) over httpx.

Mapping: an entity's ``table`` is an object type (``contacts``, ``notes``, ``calls``,
``emails``, ``meetings``), its fields are property names, and the key is usually
``hs_object_id``. A child entity maps its parent field to ``associations.<object type>``:
``Cond(parent, "in", ids)`` is answered by the v4 associations batch read, then the children
are read (batch read, or search when other conditions, ``after`` or ``limit`` apply); a child
associated with several of the requested parents yields one row per parent.

Everything else goes through the search endpoint: the filter tree becomes filterGroups in
disjunctive normal form, ``in`` lists are cut into IN filters of 100 values, and the groups are
packed into as few searches as HubSpot's limits allow (5 groups, 6 filters per group,
18 filters). Results are sorted by the key; ``after`` adds ``key GT after``.

Normalizers rely on what the portal offers: ``email`` is HubSpot's own EQ/IN, which ignores
case; ``phone_tail`` searches ``hs_searchable_calculated_phone_number`` (the last digits of
``phone`` and ``mobilephone``); ``card`` searches a calculated property ``<property>_normalized``
(spaces and dashes removed, upper-cased) that the portal must define for each card property.
HubSpot's EQ and IN ignore case and CONTAINS_TOKEN treats ``*`` as a wildcard, so ``eq``,
``in`` and ``contains`` are re-checked exactly on the returned values.

Modules, lowest first: ``mapping`` (entity fields <-> HubSpot properties and values), ``http``
(the client: retries, time budget, error translation), ``search`` (filter trees -> searches),
``children`` (associations and batch reads), ``connector`` (the :class:`CRMConnector`).
"""

from connectors.crm.connector import CRMConnector
from connectors.crm.http import HTTPX_ERRORS, HTTPX_NOT_RAISED

__all__ = ["HTTPX_ERRORS", "HTTPX_NOT_RAISED", "CRMConnector"]
