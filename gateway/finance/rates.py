"""Exchange rates from the config, as of a date.

The ``finance.rates`` table gives, per date, how many units of the base currency one unit of
each currency is worth from that date on. A conversion as of a day uses, for each currency, the
latest rate dated on or before that day; between two currencies other than the base, the rate
goes through the base (GBP -> USD = GBP -> EUR / USD -> EUR). Every conversion says which rate
it used, so an answer can show its rates.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, localcontext

from gateway.finance.money import MoneyError


class MissingRate(MoneyError):
    """The config has no rate for a currency on or before the day asked for."""

    code = "MISSING_RATE"

#: Significant digits kept in a cross rate (two rates divided); amounts are rounded after.
CROSS_RATE_DIGITS = 18


@dataclass(frozen=True, slots=True)
class RateUsed:
    """One rate a conversion used: 1 ``source`` = ``rate`` ``target``, effective ``since``
    (for a cross rate, the later of the two dates it was made from)."""

    source: str
    target: str
    rate: Decimal
    since: date


class RateTable:
    """Dated rates against one base currency."""

    def __init__(self, base: str, dated: Mapping[date, Mapping[str, Decimal]]) -> None:
        self.base = base
        self._history: dict[str, tuple[list[date], list[Decimal]]] = {}
        for day in sorted(dated):
            for currency, rate in dated[day].items():
                days, rates = self._history.setdefault(currency, ([], []))
                days.append(day)
                rates.append(rate)

    @property
    def currencies(self) -> frozenset[str]:
        return frozenset({self.base, *self._history})

    def _to_base(self, currency: str, day: date) -> tuple[Decimal, date | None]:
        if currency == self.base:
            return Decimal(1), None
        days, rates = self._history.get(currency, ([], []))
        at = bisect.bisect_right(days, day)
        if at == 0:
            since = f" (its first rate is dated {days[0].isoformat()})" if days else ""
            raise MissingRate(f"no exchange rate for {currency} on or before {day.isoformat()}"
                             f"{since}; add one under finance.rates in the config "
                             f"(units of {self.base} per 1 {currency})")
        return rates[at - 1], days[at - 1]

    def rate(self, source: str, target: str, day: date) -> RateUsed:
        """The rate from ``source`` to ``target`` as of ``day``; MoneyError when one is missing."""
        to_base, since_a = self._to_base(source, day)
        from_base, since_b = self._to_base(target, day)
        with localcontext() as context:
            context.prec = CROSS_RATE_DIGITS
            rate = (to_base / from_base).normalize()
        since = max((d for d in (since_a, since_b) if d is not None), default=day)
        return RateUsed(source, target, rate, since)
