"""Which fields an argument, input field or computed field reveals: the schema's data lineage.

A filter on ``email`` tells whether a customer with that address exists even when the answer
shows no address; ``displayName`` is computed from names. So each such element may be used
only by a role that may read, unmasked, every field listed for it here (no existence oracle).
An element listed with ``()`` reveals nothing of its own. An argument or input field missing
from this table is denied to every role but one with ``all_fields`` (deny by default); the
policy loader lists them, and a meta-test keeps this table in step with the schema.
"""

from __future__ import annotations

from collections.abc import Mapping

NAMES = ("PersonName.given", "PersonName.family", "PersonName.full", "SourcedText.value")

LINEAGE: Mapping[str, tuple[str, ...]] = {
    # computed output fields
    "Customer.displayName": NAMES,
    # lookups: finding a customer by a value reveals that the value belongs to someone
    "Query.customer(id:)": (),
    "Query.customerByEmail(email:)": ("Email.address",),
    "Query.customerByPhone(phone:)": ("Phone.number",),
    "Query.customerByCard(number:)": ("LoyaltyCard.number",),
    # listing, filters and paging
    "Query.customers(filter:)": (),
    "Query.customers(first:)": (),
    "Query.customers(after:)": (),
    "CustomerFilter.name": NAMES,
    "CustomerFilter.email": ("Email.address",),
    "CustomerFilter.phone": ("Phone.number",),
    "CustomerFilter.city": ("Address.city",),
    "CustomerFilter.shop": ("SourceRecord.source",),
    "Customer.transactions(first:)": (),
    "Customer.interactions(first:)": (),
    # an account's day and currency, a page of its transactions: nothing of their own
    "Customer.account(asOf:)": (),
    "Customer.account(currency:)": (),
    **{f"Account.transactions({a}:)": () for a in ("first", "after", "from", "to", "kinds")},
    # segment totals: sums over many customers, nothing of one
    **{f"Query.accountSegments({a}:)": () for a in ("by", "asOf", "currency")},
    "Query.stewardLog(first:)": (),
    # the audit log names ids, field paths and codes, never personal values
    **{f"Query.auditLog({a}:)": () for a in ("customer", "subject", "kind", "purpose", "before",
                                              "first")},
    # stewards' mutations name records and customers, never personal values
    "Mutation.linkRecords(records:)": (),
    "Mutation.linkRecords(reason:)": (),
    "Mutation.unlinkRecord(record:)": (),
    "Mutation.unlinkRecord(reason:)": (),
    "Mutation.mergeCustomers(ids:)": (),
    "Mutation.mergeCustomers(reason:)": (),
    "Mutation.splitCustomer(id:)": (),
    "Mutation.splitCustomer(records:)": (),
    "Mutation.splitCustomer(reason:)": (),
    "Mutation.invalidateCache(source:)": (),
    "RecordRef.source": (),
    "RecordRef.localId": (),
    # a customer's own view and decisions: about themselves only (the row filter binds them)
    "Me.accessLog(first:)": (),
    "Me.accessLog(before:)": (),
    "Mutation.objectTo(purpose:)": (),
    "Mutation.withdrawObjection(purpose:)": (),
    "Mutation.requestCorrection(field:)": (),
    "Mutation.requestCorrection(message:)": (),
    "Mutation.requestCorrection(source:)": (),
    "Mutation.requestCorrection(value:)": (),
}
