"""Contact details shown without giving them away: enough to tell which, not to use."""

from __future__ import annotations


def mask_address(address: str) -> str:
    """Return a phone number or email address with its middle hidden: "+14•••••••01",
    "b•••@example.com"."""
    if not address:
        return ""
    if "@" in address:
        local, _, domain = address.partition("@")
        return f"{local[:1]}•••@{domain}"
    if len(address) <= 5:
        return "•" * len(address)
    return address[:3] + "•" * (len(address) - 5) + address[-2:]


def mask_in(text: str, address: str) -> str:
    """Return `text` with `address` masked wherever it appears, as a provider's or mail
    server's error message may quote it ("the mail server refused bob@example.com: …"); a
    phone number also without its "+"."""
    if not address or not text:
        return text
    masked = mask_address(address)
    for spelled in dict.fromkeys([address, address.lstrip("+")]):
        if len(spelled) > 5:
            text = text.replace(spelled, masked)
    return text
