"""Finance: customer accounts across shops, risk, profitability, and streamed exports.

- :mod:`money`: ISO 4217 currencies, minor units, rounding (exact decimals, never floats).
- :mod:`rates`: the configured exchange-rate table, as of a date.
- :mod:`config`: the config file's ``finance:`` section.
- :mod:`ledger`: the sources' money movements, summarized per record (SQL GROUP BY where the
  source can sum exactly, else row by row here).
- :mod:`account`: one customer's account from those summaries: totals, per shop, risk, profit.
- :mod:`export`: every customer's account, streamed as CSV or NDJSON.
"""
