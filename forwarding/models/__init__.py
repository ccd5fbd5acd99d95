from forwarding.models.alerts import AlertRule, AlertState, AlertTarget, SentAlert
from forwarding.models.calls import Call, CallType, RejectedMessage, Source, hash_key
from forwarding.models.deliveries import Attempt, Delivery, Exchange, Outcome, State, Trigger
from forwarding.models.event_names import EventName, EventNameHour, NameStatus
from forwarding.models.ingest_limits import IngestWindow
from forwarding.models.intercom import (
    CompanyLink,
    ContactLink,
    DataAttribute,
    IntercomStatus,
    RateLimitWindow,
    WorkerStart,
)
from forwarding.models.privacy import Forgotten, IntercomDeletion, SuppressedUser, hash_user
from forwarding.models.tallies import DeliveryTally
from forwarding.models.transformations import Rule, RuleCallType, RuleSet
from forwarding.models.workers import ClusterBeat, SweepRun

__all__ = [
    "AlertRule",
    "AlertState",
    "AlertTarget",
    "Attempt",
    "Call",
    "CallType",
    "ClusterBeat",
    "CompanyLink",
    "ContactLink",
    "DataAttribute",
    "EventName",
    "EventNameHour",
    "Forgotten",
    "IngestWindow",
    "Delivery",
    "DeliveryTally",
    "Exchange",
    "IntercomDeletion",
    "IntercomStatus",
    "NameStatus",
    "Outcome",
    "RateLimitWindow",
    "RejectedMessage",
    "Rule",
    "RuleCallType",
    "RuleSet",
    "Source",
    "State",
    "SentAlert",
    "SuppressedUser",
    "SweepRun",
    "Trigger",
    "WorkerStart",
    "hash_key",
    "hash_user",
]
