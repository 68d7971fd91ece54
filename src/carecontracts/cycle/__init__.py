"""The monthly cycle: submissions, month-end close with prior-period adjustments, invoices,
challenges and the event log. One application layer for the command line and the service."""
