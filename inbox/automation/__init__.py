"""Routing and automation: teams, agent availability, auto-assignment, automation rules, business hours, CSAT,
first-response SLA.

Everything here hangs on the core's domain events (`inbox/domain_events.py`, subscribed in `inbox/apps.py`):
no provider calls into it, and its writes go through the core's services (assignment, labels, replies, notes),
so the audit log, the outbox, the reply window and quota, and the live layer apply unchanged.
"""
