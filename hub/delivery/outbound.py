"""A stored user record -> the adapter's OutboundUser, with only the extras subscribed.

Pure: no I/O. The owner and lead source come in already resolved to the
partner's IDs; `trial` dates go out only if the subscription has `trial`.
"""

from __future__ import annotations

from adapters.base import OutboundUser
from hub.records import StoredRecord

_FIELDS = {
    "birthdate": "birthdate",
    "gender": "gender",
    "address1": "address1",
    "address2": "address2",
    "city": "city",
    "zipcode": "zipcode",
    "state": "state",
    "country": "country",
    "mobile": "mobile",
    "email": "email",
    "homePhone": "home_phone",
    "workPhone": "work_phone",
    "company": "company",
}


def build(
    record: StoredRecord,
    *,
    partner_id: str | None,
    extras: frozenset[str],
    owner_id: str | None = None,
    lead_source_id: str | None = None,
    lead_source_name: str | None = None,
    idempotency_key: str = "",
) -> OutboundUser:
    info = record.body.get("userInfo", {})
    lead = record.body.get("leadInfo", {})
    trial = "trial" in extras
    return OutboundUser(
        hub_uuid=record.uuid,
        partner_id=partner_id,
        user_type=info["userType"],
        status=info["userStatus"],
        firstname=info["firstname"],
        lastname=info["lastname"],
        owner_id=owner_id if "owner" in extras else None,
        lead_source_id=lead_source_id if "lead_source" in extras else None,
        lead_source_name=lead_source_name if "lead_source" in extras else None,
        trial_start=lead.get("trialStart") if trial else None,
        trial_end=lead.get("trialEnd") if trial else None,
        idempotency_key=idempotency_key,
        **{ours: info.get(theirs) for theirs, ours in _FIELDS.items()},
    )
