"""Who may see what: the policy model, its decisions, masks, row filters and per-role schemas.

How a request uses it (pure decisions here; the wiring lives in gateway.app)::

    policy = load_policy(path)                       # at start-up; PolicyFileError lists problems
    decider = Decider(policy, Catalog.of(schema))    # views cached per (roles, purpose)
    schemas = RoleSchemas(schema, mask_key=secret)   # role schemas cached per view

    view = decider.view_for(principal)               # AccessDenied: no/unknown/forbidden purpose
    rows = decider.rows_for(view, principal)         # RowScope for the planner and resolver
    result = await schemas.strawberry_for(view).execute(query, ...)   # validate + mask

See docs/policies.md for the file format and the rules of decision.
"""

from gateway.policy.catalog import Catalog, default_catalog
from gateway.policy.decide import Decider, RoleView
from gateway.policy.errors import (
    AccessDenied,
    NothingVisible,
    PolicyError,
    PolicyFileError,
    PrincipalIncomplete,
    PurposeNotAllowed,
    PurposeRequired,
    UnknownPurpose,
    UnknownRole,
)
from gateway.policy.loader import load_policy, parse_policy
from gateway.policy.masks import STRATEGIES, Mask, mask_value
from gateway.policy.model import Policy
from gateway.policy.rows import RowScope, SourceFacts, scope_for, source_facts
from gateway.policy.schema_view import RoleSchemas

__all__ = [
    "STRATEGIES", "AccessDenied", "Catalog", "Decider", "Mask", "NothingVisible", "Policy",
    "PolicyError", "PolicyFileError", "PrincipalIncomplete", "PurposeNotAllowed",
    "PurposeRequired", "RoleSchemas", "RoleView", "RowScope", "SourceFacts", "UnknownPurpose",
    "UnknownRole", "default_catalog", "load_policy", "mask_value",
    "parse_policy", "scope_for", "source_facts",
]
