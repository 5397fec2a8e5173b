"""Every input the portal accepts, declared once (pages, API and the OpenAPI document read these)."""

from __future__ import annotations

from services.portal import plans
from services.portal.service_layer.unit import PAGING_FIELDS
from services.portal.validation import MAX_CENTS, Field

US_STATES = [
    "AL",
    "AK",
    "AZ",
    "AR",
    "CA",
    "CO",
    "CT",
    "DE",
    "DC",
    "FL",
    "GA",
    "HI",
    "ID",
    "IL",
    "IN",
    "IA",
    "KS",
    "KY",
    "LA",
    "ME",
    "MD",
    "MA",
    "MI",
    "MN",
    "MS",
    "MO",
    "MT",
    "NE",
    "NV",
    "NH",
    "NJ",
    "NM",
    "NY",
    "NC",
    "ND",
    "OH",
    "OK",
    "OR",
    "PA",
    "RI",
    "SC",
    "SD",
    "TN",
    "TX",
    "UT",
    "VT",
    "VA",
    "WA",
    "WV",
    "WI",
    "WY",
]

TEXT = r"^[^\x00-\x1f\x7f]+$"
ID_PATTERN = r"^[a-z]{3}_[0-9a-f]{16}$"

FIRST_NAME = Field("first_name", max_len=60, pattern=TEXT, label="First name")
LAST_NAME = Field("last_name", max_len=60, pattern=TEXT, label="Last name")
STREET = Field("street", max_len=120, pattern=TEXT, label="Street address")
CITY = Field("city", max_len=80, pattern=TEXT, label="City")
STATE = Field("state", "enum", choices=tuple(US_STATES), label="State")
ZIP = Field("zip", max_len=10, pattern=r"^[0-9]{5}(-[0-9]{4})?$", label="ZIP code")
DATE_OF_BIRTH = Field("date_of_birth", "date", label="Date of birth")
ANNUAL_INCOME = Field(
    "annual_income_cents",
    "cents",
    minimum=0,
    maximum=MAX_CENTS,
    label="Annual income",
    description="yearly income before tax, in cents",
)

PREQUALIFICATION = (FIRST_NAME, LAST_NAME, STREET, CITY, STATE, ZIP, ANNUAL_INCOME)

APPLICATION = (
    Field("location_id", pattern=ID_PATTERN, max_len=20, label="Location"),
    FIRST_NAME,
    LAST_NAME,
    DATE_OF_BIRTH,
    STREET,
    CITY,
    STATE,
    ZIP,
    Field("email", max_len=200, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$", label="Email"),
    Field("phone", max_len=20, pattern=r"^[0-9 ()+.-]{7,20}$", label="Phone"),
    ANNUAL_INCOME,
    Field(
        "monthly_housing_cents",
        "cents",
        minimum=0,
        maximum=MAX_CENTS,
        label="Monthly rent or mortgage",
        description="monthly rent or mortgage payment, in cents",
    ),
    Field(
        "requested_cents",
        "cents",
        minimum=100,
        maximum=MAX_CENTS,
        label="Amount requested",
        description="credit requested, in cents",
    ),
    Field(
        "consent",
        "bool",
        label="Consent",
        description="the patient read the consent statement and agreed to apply and to a credit check",
    ),
)

LOOKUP = (
    Field("account_number", required=False, max_len=23, pattern=r"^[0-9 -]+$", label="Account number"),
    Field("zip", required=False, max_len=10, pattern=r"^[0-9]{5}(-[0-9]{4})?$", label="ZIP code"),
    Field("first_name", required=False, max_len=60, pattern=TEXT, label="First name"),
    Field("last_name", required=False, max_len=60, pattern=TEXT, label="Last name"),
    Field("date_of_birth", "date", required=False, label="Date of birth"),
)

ACCOUNT_STATUSES = ("active", "suspended", "closed")
ACCOUNT_LIST = (
    Field("q", required=False, max_len=60, pattern=TEXT, description="name or last four digits"),
    Field("status", "enum", required=False, choices=ACCOUNT_STATUSES),
    *PAGING_FIELDS,
)

APPLICATION_STATUSES = ("approved", "pending_review", "declined")
APPLICATION_LIST = (
    Field("q", required=False, max_len=60, pattern=TEXT, description="applicant name"),
    Field("status", "enum", required=False, choices=APPLICATION_STATUSES),
    Field("location_id", required=False, pattern=ID_PATTERN, max_len=20),
    *PAGING_FIELDS,
)

PLAN_CODES = tuple(plan.code for plan in plans.CATALOGUE)
OFFERED_PLANS = (Field("plan_codes", "enum_list", choices=PLAN_CODES, label="Plans offered"),)
ESTIMATE = (
    Field("plan_code", "enum", choices=PLAN_CODES, label="Plan"),
    Field("amount_cents", "cents", minimum=1, maximum=MAX_CENTS, label="Purchase amount"),
)

AUDIT_ACTIONS = (
    "account.list",
    "account.view",
    "account.transactions",
    "account.lookup",
    "application.list",
    "application.view",
    "application.submit",
    "prequalification.check",
    "plans.update",
    "activity.view",
    "charge.create",
    "hold.create",
    "charge.void",
    "refund.create",
    "payment.post",
    "transaction.list",
    "transaction.export",
    "deposit.list",
)
AUDIT_OUTCOMES = ("ok", "not_found", "denied", "no_match", "throttled", "refused", "step_up")
ACTIVITY_LIST = (
    Field("action", "enum", required=False, choices=AUDIT_ACTIONS),
    Field("outcome", "enum", required=False, choices=AUDIT_OUTCOMES),
    Field("actor", required=False, max_len=64, pattern=TEXT, description="staff user id (sub)"),
    *PAGING_FIELDS,
)


# --- issue 7: money ----------------------------------------------------------------------------
IDEMPOTENCY_KEY = Field("idempotency_key", max_len=100, min_len=8, pattern=r"^[A-Za-z0-9_.:-]+$")
CHARGE = (
    Field("account_id", pattern=r"^acc_[0-9a-f]{16}$", max_len=20, label="Account"),
    Field("location_id", pattern=ID_PATTERN, max_len=20, label="Location"),
    Field("plan_code", "enum", choices=PLAN_CODES, label="Plan"),
    Field("amount_cents", "cents", minimum=1, maximum=MAX_CENTS, label="Amount"),
    Field("description", max_len=200, min_len=1, pattern=TEXT, label="Treatment"),
    Field("treatment_date", "date", label="Treatment date"),
    Field(
        "hold_id",
        required=False,
        pattern=r"^hld_[0-9a-f]{16}$",
        max_len=20,
        label="Hold",
        description="an authorization-only hold this purchase completes",
    ),
)
AUTHORIZATION = tuple(f for f in CHARGE if f.name != "hold_id")
REFUND = (
    Field("amount_cents", "cents", minimum=1, maximum=MAX_CENTS, label="Amount"),
    Field("reason", required=False, max_len=200, pattern=TEXT, label="Reason", default=""),
)
PAYMENT = (
    Field("account_number", max_len=16, pattern=r"^[0-9]{16}$", label="Account number"),
    Field("amount_cents", "cents", minimum=1, maximum=MAX_CENTS, label="Amount"),
    Field("reference", required=False, max_len=64, pattern=r"^[A-Za-z0-9_.:-]+$", default=""),
)
TRANSACTION_KINDS = ("charge", "refund", "void", "payment", "interest")
TRANSACTION_LIST = (
    Field(
        "q",
        required=False,
        max_len=60,
        pattern=TEXT,
        description="treatment, authorization code or last four",
    ),
    Field("kind", "enum", required=False, choices=TRANSACTION_KINDS),
    Field("location_id", required=False, pattern=ID_PATTERN, max_len=20),
    Field("date_from", "date", required=False),
    Field("date_to", "date", required=False),
    *PAGING_FIELDS,
)
DEPOSIT_LIST = (
    Field("date_from", "date", required=False),
    Field("date_to", "date", required=False),
    *PAGING_FIELDS,
)
