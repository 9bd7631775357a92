"""Paging channels: one module per provider, each with `send(delivery, message) -> provider id`
raising `DeliveryError(permanent=…)` (base.py); `registry.py` names them and picks the one that
reaches a contact method."""
