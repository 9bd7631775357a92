"""Files posted to a room: bounded in size, typed by their content (not their name), stored."""

from __future__ import annotations

import filetype
from django.conf import settings
from django.core.files.uploadedfile import UploadedFile

from warroom.models import Attachment, Message

# What may be attached: logs and text, screenshots, PDFs, archives of logs. Markup (HTML, SVG,
# XML) is refused outright: it is the one kind of file that can carry a script.
ALLOWED_TYPES = {
    "text/plain",
    "application/json",
    "image/png",
    "image/jpeg",
    "image/gif",
    "image/webp",
    "application/pdf",
    "application/gzip",
    "application/zip",
}


_MARKUP = ("<!doctype", "<html", "<svg", "<?xml", "<script", "<head", "<body", "<iframe")


class AttachmentRefused(Exception):
    """The file is too big or of a type rooms do not take; the message says which."""


def content_type_of(head: bytes) -> str:
    """Return the type the bytes are (magic numbers); UTF-8 text without one is text/plain."""
    kind = filetype.guess(head)
    if kind is not None:
        return kind.mime
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 4:  # not just a character cut at the end of the sample
            return "application/octet-stream"
        text = head[: exc.start].decode("utf-8")
    stripped = text.lstrip()
    if stripped[:200].lower().startswith(_MARKUP):
        return "image/svg+xml" if "<svg" in stripped[:1000].lower() else "text/html"
    if stripped.startswith(("{", "[")):
        return "application/json"
    if "\x00" in text:
        return "application/octet-stream"
    return "text/plain"


def check(file: UploadedFile) -> str:
    """Return the file's content type, or refuse it (too big, or a type rooms do not take)."""
    limit = settings.WARROOM_ATTACHMENT_MAX_BYTES
    if file.size is not None and file.size > limit:
        raise AttachmentRefused(f"{file.name} is {file.size} bytes; the limit is {limit} bytes")
    head = file.read(8192)
    file.seek(0)
    content_type = content_type_of(head)
    if content_type not in ALLOWED_TYPES:
        allowed = ", ".join(sorted(ALLOWED_TYPES))
        raise AttachmentRefused(f"{file.name} is {content_type}; rooms take {allowed}")
    return content_type


def attach(message: Message, file: UploadedFile, content_type: str) -> Attachment:
    """Store `file` on `message`; check it first (`check`), with every other file posted."""
    return Attachment.objects.create(
        message=message,
        file=file,
        name=(file.name or "attachment")[:255],
        content_type=content_type,
        size=file.size or 0,
    )
