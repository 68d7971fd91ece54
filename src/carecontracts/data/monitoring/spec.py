"""The columns of the contract-monitoring files, as the published specification names them.

Each file type (ACM, PLCM, IAP) is a list of data elements in the order the specification
gives them, each with its status in the specification (M mandatory, R required where it
applies, O optional) and the check a receiving office applies to its values. Headers are
matched on the element names of the NHS Data Model and Dictionary, in upper case, with
spaces or underscores between words (`ORGANISATION IDENTIFIER (CODE OF PROVIDER)` and
`ORGANISATION_IDENTIFIER_(CODE_OF_PROVIDER)` are the same column): providers' systems
write both. See the package docstring for the version followed and what was assumed.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Status(str, Enum):
    """A data element's status in the specification."""

    MANDATORY = "M"
    REQUIRED = "R"
    OPTIONAL = "O"


class Check(str, Enum):
    """What a value must look like."""

    TEXT = "text"
    ORGANISATION = "organisation"
    YEAR = "year"
    MONTH = "month"
    CREATED = "created"
    DATE = "date"
    POD = "pod"
    TFC = "tfc"
    ACTIVITY = "activity"
    MONEY = "money"
    UNIT_PRICE = "unit price"
    FACTOR = "factor"
    NHS_NUMBER = "nhs number"
    WHOLE = "whole"


class FileKind(str, Enum):
    """The three files: aggregate actuals and plan, patient-level actuals, the plan."""

    ACM = "acm"
    PLCM = "plcm"
    IAP = "iap"

    @property
    def long_name(self) -> str:
        return {
            FileKind.ACM: "Aggregate Contract Monitoring (ACM)",
            FileKind.PLCM: "Patient Level Contract Monitoring (PLCM)",
            FileKind.IAP: "Indicative Activity Plan (IAP)",
        }[self]


@dataclass(frozen=True)
class Element:
    """One column: its dictionary name, status, check, and other spellings seen in files."""

    name: str
    check: Check = Check.TEXT
    status: Status = Status.REQUIRED
    aliases: tuple[str, ...] = ()
    choices: tuple[str, ...] = ()  # values outside these are accepted with a warning


def header_key(text: str) -> str:
    """A header as compared: upper case, underscores as spaces, single spaces, trimmed."""
    return " ".join(text.replace("_", " ").upper().split())


# The names used by the code below, so a typo is an error at import, not a silent miss.
FINANCIAL_MONTH = "FINANCIAL MONTH"
FINANCIAL_YEAR = "FINANCIAL YEAR"
CREATED = "DATE AND TIME DATA SET CREATED"
PROVIDER = "ORGANISATION IDENTIFIER (CODE OF PROVIDER)"
COMMISSIONER = "ORGANISATION IDENTIFIER (CODE OF COMMISSIONER)"
TFC = "ACTIVITY TREATMENT FUNCTION CODE"
SERVICE_CATEGORY = "COMMISSIONED SERVICE CATEGORY CODE"
SERVICE_CODE = "SERVICE CODE"
POD = "POINT OF DELIVERY CODE"
LOCAL_POD = "LOCAL POINT OF DELIVERY CODE"
LOCAL_CONTRACT = "LOCAL CONTRACT CODE"
LOCAL_CONTRACT_MONITORING = "LOCAL CONTRACT MONITORING CODE"
ADDITIONAL_DESCRIPTION = "CONTRACT MONITORING ADDITIONAL DESCRIPTION"
TARIFF_CODE = "TARIFF CODE"
PLANNED_ACTIVITY = "CONTRACT MONITORING PLANNED ACTIVITY"
PLANNED_PRICE = "CONTRACT MONITORING PLANNED PRICE"
PLANNED_MFF = "CONTRACT MONITORING PLANNED MARKET FORCES FACTOR"
ACTUAL_ACTIVITY = "CONTRACT MONITORING ACTUAL ACTIVITY"
ACTUAL_PRICE = "CONTRACT MONITORING ACTUAL PRICE"
ACTUAL_MFF = "CONTRACT MONITORING ACTUAL MARKET FORCES FACTOR"
NHS_NUMBER = "NHS NUMBER"
ACTIVITY_START = "ACTIVITY START DATE (CONTRACT MONITORING)"
ACTIVITY_END = "ACTIVITY END DATE (CONTRACT MONITORING)"
ACTIVITY_COUNT = "ACTIVITY COUNT (POINT OF DELIVERY)"
UNIT_PRICE = "ACTIVITY UNIT PRICE"
TOTAL_COST = "TOTAL COST"

M, R, O = Status.MANDATORY, Status.REQUIRED, Status.OPTIONAL

HEADER = (
    Element(FINANCIAL_MONTH, Check.MONTH, M),
    Element(FINANCIAL_YEAR, Check.YEAR, M),
    Element(CREATED, Check.CREATED, M),
)

ORGANISATIONS = (
    Element(PROVIDER, Check.ORGANISATION, M),
    Element("ORGANISATION SITE IDENTIFIER (OF TREATMENT)", Check.ORGANISATION),
    Element("ORGANISATION IDENTIFIER (GP PRACTICE RESPONSIBILITY)", Check.ORGANISATION),
    Element("ORGANISATION IDENTIFIER (RESIDENCE RESPONSIBILITY)", Check.ORGANISATION),
    Element(COMMISSIONER, Check.ORGANISATION, M),
    Element("GENERAL MEDICAL PRACTICE (PATIENT REGISTRATION)", Check.ORGANISATION,
            aliases=("GENERAL MEDICAL PRACTICE CODE (PATIENT REGISTRATION)",)),
)

SERVICE_AGGREGATE = (
    Element(TFC, Check.TFC),
    Element("LOCAL SUB-SPECIALTY CODE", status=O),
    Element("WARD CODE", status=O),
    Element(SERVICE_CATEGORY),
    Element(SERVICE_CODE),
    Element("SPECIALISED MENTAL HEALTH SERVICE CATEGORY CODE", status=O),
)

COMMISSIONING = (
    Element(POD, Check.POD, M),
    Element("POINT OF DELIVERY FURTHER DETAIL CODE"),
    Element("POINT OF DELIVERY FURTHER DETAIL DESCRIPTION"),
    Element(LOCAL_POD, aliases=("LOCAL POD CODE",)),
    Element("LOCAL POINT OF DELIVERY DESCRIPTION", aliases=("LOCAL POD DESCRIPTION",)),
    Element(LOCAL_CONTRACT),
    Element("LOCAL CONTRACT CODE DESCRIPTION"),
    Element(LOCAL_CONTRACT_MONITORING),
    Element("LOCAL CONTRACT MONITORING DESCRIPTION"),
    Element("CONTRACT MONITORING ADDITIONAL DETAIL", status=O),
    Element(ADDITIONAL_DESCRIPTION, status=O),
    Element(TARIFF_CODE),
    Element("NATIONAL TARIFF INDICATOR", choices=("Y", "N")),
)

PLAN = (
    Element(PLANNED_ACTIVITY, Check.ACTIVITY),
    Element(PLANNED_PRICE, Check.MONEY),
    Element(PLANNED_MFF, Check.FACTOR),
)

ACTUAL = (
    Element(ACTUAL_ACTIVITY, Check.ACTIVITY),
    Element(ACTUAL_PRICE, Check.MONEY, M),
    Element(ACTUAL_MFF, Check.FACTOR),
)

REPORTING_TYPE = Element("REPORTING TYPE INDICATOR", status=O)

ACM_ELEMENTS = (*HEADER, REPORTING_TYPE, *ORGANISATIONS, *SERVICE_AGGREGATE, *COMMISSIONING, *PLAN, *ACTUAL)

IAP_ELEMENTS = (
    *HEADER, *ORGANISATIONS, *SERVICE_AGGREGATE, *COMMISSIONING,
    Element(PLANNED_ACTIVITY, Check.ACTIVITY),
    Element(PLANNED_PRICE, Check.MONEY, M),
    Element(PLANNED_MFF, Check.FACTOR),
    Element("NAME OF SUBMITTER", status=O),
)

PLCM_ELEMENTS = (
    *HEADER, REPORTING_TYPE, *ORGANISATIONS,
    Element("WITHHELD IDENTITY REASON", status=O),
    Element(NHS_NUMBER, Check.NHS_NUMBER),
    Element("LOCAL PATIENT IDENTIFIER (EXTENDED)"),
    Element("POSTCODE OF USUAL ADDRESS", status=O),
    Element("PERSON BIRTH DATE", Check.DATE, O),
    Element("AGE AT ACTIVITY DATE (CONTRACT MONITORING)", Check.WHOLE),
    Element("PERSON STATED GENDER CODE", choices=("1", "2", "9", "X")),
    Element("ETHNIC CATEGORY"),
    Element(TFC, Check.TFC),
    Element("LOCAL SUB-SPECIALTY CODE", status=O),
    Element("HOSPITAL PROVIDER SPELL IDENTIFIER"),
    Element("OUTPATIENT ATTENDANCE IDENTIFIER", aliases=("OUT PATIENT ATTENDANCE IDENTIFIER",)),
    Element("CDS UNIQUE IDENTIFIER"),
    Element("NON CDS UNIQUE IDENTIFIER", status=O),
    Element(ACTIVITY_START, Check.DATE),
    Element(ACTIVITY_END, Check.DATE),
    Element("ADJUSTED LENGTH OF STAY", Check.WHOLE, O),
    Element("UNBUNDLED EPISODE INDICATOR", status=O),
    Element(SERVICE_CATEGORY),
    Element(SERVICE_CODE),
    *COMMISSIONING,
    Element(ACTIVITY_COUNT, Check.ACTIVITY),
    Element(UNIT_PRICE, Check.UNIT_PRICE, O),
    Element(TOTAL_COST, Check.MONEY, M),
)

ELEMENTS: dict[FileKind, tuple[Element, ...]] = {
    FileKind.ACM: ACM_ELEMENTS,
    FileKind.PLCM: PLCM_ELEMENTS,
    FileKind.IAP: IAP_ELEMENTS,
}

# The money and activity of a row, per file type: what reconciliation adds up.
AMOUNT = {FileKind.ACM: ACTUAL_PRICE, FileKind.PLCM: TOTAL_COST, FileKind.IAP: PLANNED_PRICE}
QUANTITY = {FileKind.ACM: ACTUAL_ACTIVITY, FileKind.PLCM: ACTIVITY_COUNT, FileKind.IAP: PLANNED_ACTIVITY}
MFF = {FileKind.ACM: ACTUAL_MFF, FileKind.IAP: PLANNED_MFF}

# National points of delivery that carry money but no activity: a row at one of them with
# activity other than 0 is accepted with a warning.
MONEY_ONLY_PODS = ("BLOCK", "CQUIN", "ADJUSTMENT")
# Reported in the ACM, but detailed in their own patient-level files, not the PLCM.
SEPARATE_FLOW_PODS = {"DRUG": "Drugs PLCM (DrPLCM)", "DEVICE": "Devices PLCM (DePLCM)"}
NON_ACTIVITY_PODS = (*MONEY_ONLY_PODS, *SEPARATE_FLOW_PODS)
# National activity points of delivery this release knows. NHS England keeps the national
# list beside the specification and adds to it; a code not here is accepted with a warning,
# so that a newer code is never refused by an older release of this list.
ACTIVITY_PODS = (
    "AE", "DC", "EL", "ELXBD", "RADAY", "RANIGHT",
    "NEL", "NELNE", "NELNEXBD", "NELST", "NELXBD",
    "OPFA", "OPFAMPCL", "OPFAMPNCL", "OPFASPCL", "OPFASPNCL", "NF2FFA",
    "OPFUP", "OPFUPMPCL", "OPFUPMPNCL", "OPFUPSPCL", "OPFUPSPNCL", "NF2FFUP",
    "OPPROC", "DAIMG", "DALAB", "UNBCHEMO", "UNBRAD", "UNBRTHPY", "UNBREHAB", "UNBACC", "UNBPCC", "UNBNCC",
    "MATPATHAN", "MATPATHPN", "ARD", "CRD", "COMM", "POC", "YOC", "OTHER",
)
NATIONAL_PODS = frozenset(ACTIVITY_PODS + NON_ACTIVITY_PODS)

# The columns naming one ACM row's place, in the order differences show them. Those present
# in both files are the grain PLCM rows are summed to.
GRAIN = (
    PROVIDER, COMMISSIONER, FINANCIAL_YEAR, FINANCIAL_MONTH, POD, LOCAL_POD, TFC, TARIFF_CODE,
    LOCAL_CONTRACT, LOCAL_CONTRACT_MONITORING, SERVICE_CATEGORY, SERVICE_CODE,
)


def element_names(kind: FileKind) -> list[str]:
    return [e.name for e in ELEMENTS[kind]]


def lookup(kind: FileKind) -> dict[str, Element]:
    """Every accepted spelling of every element of a file type, by header key."""
    found: dict[str, Element] = {}
    for element in ELEMENTS[kind]:
        for name in (element.name, *element.aliases):
            found[header_key(name)] = element
    return found


def guess_kind(headers: list[str]) -> FileKind | None:
    """The file type its columns show: actual prices (ACM), total cost (PLCM), or only
    planned prices (IAP)."""
    keys = {header_key(h) for h in headers}
    if header_key(ACTUAL_PRICE) in keys:
        return FileKind.ACM
    if header_key(TOTAL_COST) in keys:
        return FileKind.PLCM
    if header_key(PLANNED_PRICE) in keys:
        return FileKind.IAP
    return None
