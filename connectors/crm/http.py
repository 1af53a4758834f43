"""HTTP to the CRM: one httpx client per source, a time budget per call, retries of 429 and
5xx, and every httpx exception and error status translated once, here."""

from __future__ import annotations

import asyncio
import contextlib
import random
import re
from collections.abc import AsyncIterator, Iterator
from contextvars import ContextVar
from typing import Any

import httpx
import orjson

from connectors.errors import (
    ConnectorError,
    SourceConfigError,
    SourceTimeout,
    SourceUnavailable,
    UpstreamError,
)
from connectors.round_trips import note

#: httpx exceptions -> (our error, what happened); looked up along the exception's MRO.
HTTPX_ERRORS: dict[type[Exception], tuple[type[ConnectorError], str]] = {
    httpx.ConnectTimeout: (SourceTimeout, "connecting to the CRM timed out"),
    httpx.ReadTimeout: (SourceTimeout, "the CRM did not answer in time"),
    httpx.WriteTimeout: (SourceTimeout, "sending the request to the CRM timed out"),
    httpx.PoolTimeout: (SourceTimeout, "no free connection in time (raise pool_size?)"),
    httpx.TimeoutException: (SourceTimeout, "timed out"),
    httpx.ConnectError: (SourceUnavailable, "cannot connect to the CRM"),
    httpx.ReadError: (SourceUnavailable, "connection lost while reading the answer"),
    httpx.WriteError: (SourceUnavailable, "connection lost while sending the request"),
    httpx.CloseError: (SourceUnavailable, "connection failed while closing"),
    httpx.NetworkError: (SourceUnavailable, "network error"),
    httpx.ProxyError: (SourceUnavailable, "the proxy refused the connection"),
    httpx.RemoteProtocolError: (SourceUnavailable, "the CRM closed the connection mid-answer"),
    httpx.LocalProtocolError: (UpstreamError, "could not send a valid HTTP request"),
    httpx.ProtocolError: (UpstreamError, "HTTP protocol error"),
    httpx.UnsupportedProtocol: (SourceConfigError, "base_url must start with https:// or http://"),
    httpx.TransportError: (SourceUnavailable, "transport error"),
    httpx.DecodingError: (UpstreamError, "the answer could not be decoded"),
    httpx.TooManyRedirects: (UpstreamError, "too many redirects"),
    httpx.HTTPStatusError: (UpstreamError, "the CRM answered with an error"),
    httpx.RequestError: (UpstreamError, "the request failed"),
    httpx.HTTPError: (UpstreamError, "HTTP error"),
    httpx.InvalidURL: (SourceConfigError, "base_url is not a valid URL"),
}
#: httpx exceptions a request cannot raise (misuse of streams and cookies): left unmapped.
HTTPX_NOT_RAISED: tuple[type[Exception], ...] = (
    httpx.CookieConflict, httpx.StreamError, httpx.StreamConsumed, httpx.StreamClosed,
    httpx.ResponseNotRead, httpx.RequestNotRead)

#: HTTP status -> (our error, what it means); other statuses are UpstreamError.
STATUS_ERRORS: dict[int, tuple[type[ConnectorError], str]] = {
    401: (SourceUnavailable, "authentication refused; check the token"),
    403: (SourceUnavailable, "authentication refused: the token lacks a scope for this read"),
    429: (SourceUnavailable, "rate limited by the CRM; try again later"),
}

_DEADLINE: ContextVar[float | None] = ContextVar("crm_deadline", default=None)
_CATEGORY = re.compile(r"[A-Z][A-Z_]{0,63}")


def next_after(data: dict[str, Any]) -> str | None:
    """The cursor of the next page of an answer, None on the last page."""
    after = ((data.get("paging") or {}).get("next") or {}).get("after")
    return None if after in (None, "") else str(after)


class CRMClient:
    """Requests to one CRM source; connection keys ``base_url`` and ``token`` (bearer)."""

    def __init__(self, source: str, connection: dict[str, Any], *, timeout: float,
                 pool_size: int, rate_limit_retries: int, error_retries: int,
                 default_retry_after: float) -> None:
        self.source = source
        self.connection = connection
        self.timeout = timeout
        self.pool_size = pool_size
        self.rate_limit_retries = rate_limit_retries
        self.error_retries = error_retries
        self.default_retry_after = default_retry_after
        self._client: httpx.AsyncClient | None = None

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            headers = {"Accept": "application/json"}
            if self.connection.get("token"):
                headers["Authorization"] = f"Bearer {self.connection['token']}"
            try:
                self._client = httpx.AsyncClient(
                    base_url=str(self.connection["base_url"]).rstrip("/"), headers=headers,
                    timeout=self.timeout, limits=httpx.Limits(max_connections=self.pool_size))
            except tuple(HTTPX_ERRORS) as exc:
                raise self.translate(exc, "connect") from exc
        return self._client

    @contextlib.asynccontextmanager
    async def budget(self) -> AsyncIterator[None]:
        """One timeout for a whole fetch, verify or introspect, retries and waits included."""
        if _DEADLINE.get() is not None:
            yield
            return
        token = _DEADLINE.set(asyncio.get_running_loop().time() + self.timeout)
        try:
            async with asyncio.timeout(self.timeout):
                yield
        except TimeoutError as exc:
            raise SourceTimeout(self.source, f"no answer within {self.timeout:g}s") from exc
        finally:
            _DEADLINE.reset(token)

    def _remaining(self) -> float:
        deadline = _DEADLINE.get()
        now = asyncio.get_running_loop().time()
        return self.timeout if deadline is None else max(deadline - now, 0.001)

    async def call(self, method: str, path: str, what: str, body: Any = None) -> dict[str, Any]:
        """One request's JSON answer, or the ConnectorError that says why there is none."""
        data = await self.exchange(method, path, what, body, missing_ok=False)
        assert data is not None  # only a missing_ok exchange answers None
        return data

    async def exchange(self, method: str, path: str, what: str, body: Any = None, *,
                       missing_ok: bool) -> dict[str, Any] | None:
        """One request, with 429 and 5xx retries; None for a 400 or 404 when ``missing_ok``."""
        client = self._http()
        content = None if body is None else orjson.dumps(body)
        headers = None if body is None else {"Content-Type": "application/json"}
        retries = {429: 0, 500: 0}
        while True:
            note(f"{method} {path}")  # paths carry object types, never values
            try:
                response = await client.request(method, path, content=content, headers=headers,
                                                timeout=self._remaining())
            except tuple(HTTPX_ERRORS) as exc:
                raise self.translate(exc, what) from exc
            status = response.status_code
            if status in (200, 207):
                return self._decode(response, what)
            if missing_ok and status in (400, 404):
                return None
            if await self._wait_before_retry(response, retries):
                continue
            error, meaning = STATUS_ERRORS.get(status, (UpstreamError, (
                "the CRM failed" if status >= 500 else "the CRM refused the request")))
            category = self._category(response)
            raise error(self.source, f"{what}: {meaning} (HTTP {status}"
                                     f"{', ' + category if category else ''})")

    async def _wait_before_retry(self, response: httpx.Response, retries: dict[int, int]) -> bool:
        """Sleep before retrying a 429 or 5xx if retries and the time budget allow it."""
        status = 500 if response.status_code >= 500 else response.status_code
        if status == 429:
            most = self.rate_limit_retries
            try:
                wait = max(float(response.headers.get("Retry-After", "")), 0.0)
            except ValueError:
                wait = self.default_retry_after
        elif status == 500:
            most = self.error_retries
            wait = random.uniform(0.05, 0.15) * 2 ** retries[500]
        else:
            return False
        # A wait longer than what is left of the timeout would only end in a timeout.
        if retries[status] >= most or wait >= self._remaining():
            return False
        retries[status] += 1
        await asyncio.sleep(wait)
        return True

    def _decode(self, response: httpx.Response, what: str) -> dict[str, Any]:
        try:
            data = orjson.loads(response.content)
        except orjson.JSONDecodeError:
            data = None
        if not isinstance(data, dict):
            raise UpstreamError(self.source, f"{what}: the CRM answered HTTP "
                                             f"{response.status_code} without a JSON object")
        return data

    @staticmethod
    def _category(response: httpx.Response) -> str | None:
        """HubSpot's error category, if the body has a plausible one (never the body itself)."""
        try:
            category = orjson.loads(response.content).get("category")
        except (orjson.JSONDecodeError, AttributeError):
            return None
        return category if isinstance(category, str) and _CATEGORY.fullmatch(category) else None

    def translate(self, exc: Exception, what: str) -> ConnectorError:
        """The ConnectorError for an httpx exception, by the nearest class in HTTPX_ERRORS."""
        for cls in type(exc).__mro__:
            if cls in HTTPX_ERRORS:
                error, meaning = HTTPX_ERRORS[cls]
                return error(self.source, f"{what}: {meaning}")
        return UpstreamError(self.source, f"{what}: {type(exc).__name__}")

    def results(self, data: dict[str, Any], what: str) -> list[dict[str, Any]]:
        """The ``results`` of an answer, each with an ``id``; UpstreamError if it has none."""
        results = data.get("results")
        if not isinstance(results, list) or not all(
                isinstance(r, dict) and "id" in r for r in results):
            raise UpstreamError(self.source, f"{what}: unexpected answer from the CRM (no results)")
        return results

    @contextlib.contextmanager
    def shape(self, what: str) -> Iterator[None]:
        """Reading an answer that lacks what HubSpot always sends is an UpstreamError."""
        try:
            yield
        except (KeyError, TypeError, AttributeError, ValueError) as exc:
            raise UpstreamError(self.source, f"{what}: unexpected answer from the CRM") from exc

    async def aclose(self) -> None:
        """Close the HTTP client and its connections."""
        if self._client is not None:
            client, self._client = self._client, None
            await client.aclose()
