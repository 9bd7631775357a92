"""The on-call API: teams, schedules and their layers and overrides, who is on call, escalation
policies, the policy of each service, my contact methods, rules and settings, shifts, the audit
log. Everyone reads; responders create and remove overrides and manage their own contact methods
and notification rules; admins configure the rest. Every configuration change is audited.
"""
