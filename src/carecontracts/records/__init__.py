"""The transactional records: submissions, closes, issued lines, invoices, challenges and the event log."""

from carecontracts.records.store import Records, actor, broken_links, record_event

__all__ = ["Records", "actor", "broken_links", "record_event"]
