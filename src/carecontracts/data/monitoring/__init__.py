"""The national contract-monitoring files: read and check them as a receiving office would,
reconcile them to each other and to the invoice, and write the commissioner's priced view
back out as an ACM.

Which version the columns follow
--------------------------------
NHS England's Contract Monitoring information standards for activity of the 2025/26 financial
year: DCB2050 Aggregate Contract Monitoring (ACM) version 2.0 and DCB3003 Patient Level
Contract Monitoring (PLCM), with the user guidance updated on 14 March 2025, their columns
named by the data elements of the NHS Data Model and Dictionary. The Indicative Activity Plan
(IAP) is the planned half of the ACM (the same service and commissioning columns, with planned
activity, price and market forces factor), as ICBs exchange it for 2025/26.

What was assumed
----------------
The technical output specifications themselves (the spreadsheets of fields, formats and code
lists) were not to hand; the columns were taken from the data dictionary's element names and
groups (submission header, organisations, service and commissioning details, activity and
price) and from the columns of 2025/26 ACM, PLCM and IAP files as ICBs' data platforms load
them. In particular:

- mandatory here (a blank is an error, a missing column is an error): the submission header
  (financial month and year, date and time created), provider, commissioner, point of
  delivery and the row's money (actual price, total cost, planned price); every other element
  is taken as required where it applies or optional, so a file without it is accepted;
- the PLCM's money is TOTAL COST, with ACTIVITY UNIT PRICE optional, and its activity
  ACTIVITY COUNT (POINT OF DELIVERY), as PLCM files carry them;
- NHS England keeps the national point-of-delivery codes beside the specification; this
  release knows the non-activity codes BLOCK, CQUIN, ADJUSTMENT, DRUG and DEVICE and the
  common activity codes, and accepts any other code with a warning, not an error;
- CONTRACT MONITORING ACTUAL PRICE (format max n18.max n8 in the dictionary) is the money of
  the row including the market forces factor; a receiving office pays in pence, so more than
  two decimal places is an error here.
"""

from carecontracts.data.monitoring.read import MonitoringFile, Record, financial_period, month_of, read_monitoring, year_code
from carecontracts.data.monitoring.reconcile import (
    Difference,
    Invoice,
    Reconciliation,
    Tallies,
    invoice_total,
    read_invoices,
    reconcile_invoices,
    reconcile_plcm,
)
from carecontracts.data.monitoring.spec import ELEMENTS, GRAIN, NON_ACTIVITY_PODS, FileKind
from carecontracts.data.monitoring.write import Placement, placements, priced_view, write_monitoring

SPECIFICATION = (
    "NHS England Contract Monitoring information standards for 2025/26 activity: DCB2050 Aggregate Contract "
    "Monitoring (ACM) v2.0 and DCB3003 Patient Level Contract Monitoring (PLCM), user guidance of 14 March 2025; "
    "columns named by the NHS Data Model and Dictionary; the Indicative Activity Plan (IAP) as the planned half of the ACM"
)

__all__ = [
    "ELEMENTS", "GRAIN", "NON_ACTIVITY_PODS", "SPECIFICATION",
    "Difference", "FileKind", "Invoice", "MonitoringFile", "Placement", "Reconciliation", "Record", "Tallies",
    "financial_period", "invoice_total", "month_of", "placements", "priced_view", "read_invoices", "read_monitoring",
    "reconcile_invoices", "reconcile_plcm", "write_monitoring", "year_code",
]
