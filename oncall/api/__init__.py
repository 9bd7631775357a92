"""The on-call API: teams, schedules and their layers and overrides, who is on call, escalation
policies, the policy of each service, my contact methods, rules and settings, shifts, the audit
log. Everyone reads; responders create and remove overrides and manage their own contact methods
and notification rules; admins configure the rest. Every configuration change is audited.
"""

from oncall.api.audit_views import AuditEntryViewSet
from oncall.api.me_views import (
    ContactMethodViewSet,
    MyIcalRotateView,
    MyIcalView,
    NotificationRuleViewSet,
    PersonSettingsView,
)
from oncall.api.oncall_views import DeactivationGapsView, OnCallView, ShiftsView
from oncall.api.policy_views import EscalationPolicyViewSet, ServicePolicyViewSet, TeamViewSet
from oncall.api.schedule_views import LayerViewSet, OverrideViewSet, ScheduleViewSet

__all__ = [
    "AuditEntryViewSet",
    "ContactMethodViewSet",
    "DeactivationGapsView",
    "EscalationPolicyViewSet",
    "LayerViewSet",
    "MyIcalRotateView",
    "MyIcalView",
    "NotificationRuleViewSet",
    "OnCallView",
    "OverrideViewSet",
    "PersonSettingsView",
    "ScheduleViewSet",
    "ServicePolicyViewSet",
    "ShiftsView",
    "TeamViewSet",
]
