"""How a source call survives a sick source: circuit breaker, read retries, request deadline.

Every connector call a request makes goes through :func:`call_source`::

    deadline (asyncio.timeout_at, whole request)
      └── breaker (per source: closed -> open after N failures -> half-open trial -> closed)
            └── retries (reads only; transient errors only; jittered exponential backoff)
                  └── the connector's own timeout and bounded pool (``timeout``, ``pool_size``)

A call the breaker short-circuits never touches the network and fails with
:class:`BreakerOpen` (``SOURCE_UNAVAILABLE``); a call the deadline cuts fails with
:class:`DeadlineExceeded` (``SOURCE_TIMEOUT``). Both name the source only.
"""

from __future__ import annotations

import asyncio
import enum
import math
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from connectors.errors import ConnectorError, SourceTimeout, SourceUnavailable, UpstreamError

T = TypeVar("T")


class BreakerOpen(SourceUnavailable):
    """The source's circuit breaker is open: the call was not made."""


class DeadlineExceeded(SourceTimeout):
    """The request's deadline ran out before the source answered."""


class BreakerState(enum.Enum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half-open"


#: Errors that say the source itself is sick; others (a bad mapping, an unsupported query) do not.
COUNTED: tuple[type[ConnectorError], ...] = (SourceUnavailable, UpstreamError)


class CircuitBreaker:
    """Consecutive failures of one source; after ``failures`` of them, calls short-circuit for
    ``cooldown`` seconds, then one trial call decides whether the source is back."""

    def __init__(self, source: str, failures: int, cooldown: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.source = source
        self.failures = failures
        self.cooldown = cooldown
        self.clock = clock
        self.state = BreakerState.CLOSED
        self.consecutive = 0
        self.opened_at = 0.0
        self._trial = False  # a half-open trial call is in flight

    def before_call(self) -> None:
        """Let a call through, or raise BreakerOpen (the trial call of a half-open breaker passes)."""
        if self.state is BreakerState.CLOSED:
            return
        wait = self.opened_at + self.cooldown - self.clock()
        if self.state is BreakerState.OPEN and wait <= 0:
            self.state = BreakerState.HALF_OPEN
        if self.state is BreakerState.HALF_OPEN and not self._trial:
            self._trial = True
            return
        retry = (f"next trial call in {math.ceil(max(wait, 0))}s" if wait > 0
                 else "a trial call is under way")
        raise BreakerOpen(self.source, f"circuit breaker open after {self.consecutive} failures "
                                       f"in a row; not called ({retry})")

    def succeeded(self) -> None:
        self.state, self.consecutive, self._trial = BreakerState.CLOSED, 0, False

    def failed(self) -> None:
        self.consecutive += 1
        self._trial = False
        if self.state is BreakerState.HALF_OPEN or self.consecutive >= self.failures:
            self.state, self.opened_at = BreakerState.OPEN, self.clock()

    def undecided(self) -> None:
        """The call ended without a verdict on the source (cut by the deadline, a mapping error)."""
        self._trial = False


@dataclass(frozen=True)
class RetryPolicy:
    """Read retries: ``retries`` more attempts after a transient error, waiting up to
    ``backoff * 2**attempt`` seconds (full jitter) before each."""

    retries: int = 2
    backoff: float = 0.05

    def wait(self, attempt: int) -> float:
        # Full jitter: replicas retrying the same outage do not hammer the source in step.
        return random.uniform(0, self.backoff * 2 ** attempt)


def transient(exc: ConnectorError) -> bool:
    """Whether trying again soon may help: a lost or refused connection, not a timeout (the
    source's whole time budget is spent), an error answer or a mapping problem."""
    return isinstance(exc, SourceUnavailable) and not isinstance(exc, SourceTimeout)


async def read_with_retries(read: Callable[[], Awaitable[T]], policy: RetryPolicy) -> T:
    """``read()``, tried again after transient errors; never use it for a write."""
    attempt = 0
    while True:
        try:
            return await read()
        except ConnectorError as exc:
            if attempt >= policy.retries or not transient(exc):
                raise
        await asyncio.sleep(policy.wait(attempt))
        attempt += 1


async def call_source(source: str, breaker: CircuitBreaker, read: Callable[[], Awaitable[T]],
                      policy: RetryPolicy, deadline: float | None) -> T:
    """One read of a source under its breaker, the retry policy and the request's deadline
    (``loop.time()`` value; None: none)."""
    breaker.before_call()
    try:
        async with asyncio.timeout_at(deadline):
            result = await read_with_retries(read, policy)
    except TimeoutError as exc:  # only ours: connectors turn their own timeouts into SourceTimeout
        breaker.undecided()  # the request ran out of time, which says little about the source
        raise DeadlineExceeded(source, "cut off by the request's deadline "
                                       "(request_deadline_seconds)") from exc
    except COUNTED:
        breaker.failed()
        raise
    except BaseException:
        breaker.undecided()
        raise
    breaker.succeeded()
    return result
