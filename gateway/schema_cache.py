"""GraphQL for admins: drop a source's cached results (every replica sharing the cache)."""

from __future__ import annotations

import strawberry
from graphql import GraphQLError
from strawberry.types import Info

from gateway.source_cache import CacheError


def _refused(message: str, code: str) -> GraphQLError:
    return GraphQLError(message, extensions={"code": code})


@strawberry.type
class CacheMutation:
    @strawberry.mutation(description="Drop the cached results of one source, or of every source "
                                     "when none is named, on every replica sharing the cache; the "
                                     "next reads are live. Returns the sources dropped (admin role).")
    async def invalidate_cache(self, info: Info, source: str | None = None) -> list[str]:
        context = info.context
        principal = context.principal
        # The policy hides this field from other roles; the check stays for a policy that grants it.
        if principal is None or not principal.is_admin:
            raise _refused("invalidating the cache is for the admin role", "FORBIDDEN")
        names = context.sources.names
        if source is not None and source not in names:
            raise _refused(f"source: unknown source {source!r}; sources: {', '.join(names)}",
                           "BAD_USER_INPUT")
        cache = context.resolver.cache
        if cache is not None:
            try:
                await cache.invalidate(source)
            except CacheError as exc:  # the admin must know it did not happen
                raise _refused(str(exc), "CACHE_UNAVAILABLE") from None
        dropped = [source] if source is not None else names
        if context.audit is not None:
            context.audit.action("admin", (), action="invalidate_cache", sources=dropped)
        return dropped
