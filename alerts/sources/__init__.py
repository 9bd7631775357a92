"""Turn monitoring systems' webhook payloads into NormalizedAlerts; pure, no Django.

One module per wire format, each with a `parse(payload) -> list[NormalizedAlert]`; the shape
and the helpers they share are in `base`, and `registry.PARSERS` maps a kind to its parser.
"""
