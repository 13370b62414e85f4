"""Mail: a message (.eml) and a mailbox (.mbox), by the standard library's ``email`` and
``mailbox``.

Each message is a document: its subject the title, ``From``, ``To``, ``Cc``, ``Date`` and
``Subject`` lines before its body (the plain-text part, else the HTML part's visible
text), and as metadata ``from`` (the sender's address), ``from_name``, ``to`` and ``cc``
(lists of addresses), ``subject``, ``date`` (ISO 8601) and ``message_id``, so
``--where from=ada@example.org`` and ``--where to=...`` filter. An attachment in a format the
index reads is a document of its own, keyed ``MESSAGE#ATTACHMENT`` (in an .eml, the file
is the message: ``#ATTACHMENT``), with its message's fields as metadata. In a mailbox a
message that cannot be read is left out with a warning naming it; the others are kept.
"""

from __future__ import annotations

import email
import email.policy
import email.utils
import mailbox
import os
import tempfile
from collections.abc import Callable
from email.message import EmailMessage

from .errors import Document, Skip

__all__ = ["read_eml", "read_mbox", "AttachmentReader"]

# (file name, bytes, notes) -> the attachment's documents, or None when its format is not read
AttachmentReader = Callable[[str, bytes, list[str]], list[Document] | None]

_FIELDS = ("from", "to", "cc", "subject")


def _fields(message: EmailMessage) -> tuple[dict, dict]:
    """(the message's metadata, its header lines as shown): addresses are what a filter
    matches (``from`` one address, ``to`` and ``cc`` lists of them), names are shown."""
    shown = {name: " ".join(str(message[name]).split()) for name in _FIELDS if message[name] is not None}
    fields: dict = {}
    for name in ("from", "to", "cc"):
        if name in shown:
            addresses = [address.lower() for _, address in email.utils.getaddresses([shown[name]]) if address]
            if addresses:
                fields[name] = addresses[0] if name == "from" else addresses
    sender = email.utils.parseaddr(shown.get("from", ""))[0]
    if sender:
        fields["from_name"] = sender
    if "subject" in shown:
        fields["subject"] = shown["subject"]
    date = message["date"]
    if date is not None:
        try:
            fields["date"] = email.utils.parsedate_to_datetime(str(date)).isoformat()
        except (TypeError, ValueError):
            fields["date"] = str(date)
    message_id = message["message-id"]
    if message_id is not None:
        fields["message_id"] = str(message_id).strip().strip("<>")
    if "date" in fields:
        shown["date"] = fields["date"]
    return fields, shown


def _body(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain", "html"))
    if part is None:
        return ""
    content = part.get_content()
    if part.get_content_subtype() == "html":
        from .markup import read_html

        docs = read_html(content.encode("utf-8"), [])
        return docs[0].text if docs else ""
    return content


def _message(message: EmailMessage, key: str, attachments: AttachmentReader, notes: list[str]) -> list[Document]:
    fields, shown = _fields(message)
    head = "\n".join(
        f"{name.title()}: {shown[name]}" for name in ("from", "to", "cc", "date", "subject") if name in shown
    )
    body = _body(message)
    docs = [Document(key, f"{head}\n\n{body}".strip(), title=fields.get("subject") or None, metadata=fields)]
    taken: set[str] = set()
    for part in message.iter_attachments():
        name = part.get_filename() or ""
        if not name:
            continue
        payload = part.get_payload(decode=True)
        if not isinstance(payload, bytes) or not payload:
            continue
        label = name if name not in taken else f"{name}-{len(taken)}"
        taken.add(label)
        found = attachments(name, payload, notes)
        if found is None:
            continue
        for doc in found:
            doc.key = f"{key}#{label}" + (f"#{doc.key}" if doc.key else "")
            doc.title = doc.title or name
            doc.metadata = {
                **{k: v for k, v in fields.items() if k != "message_id"},
                **doc.metadata,
                "attachment": name,
            }
            docs.append(doc)
    return docs


def read_eml(data: bytes, notes: list[str], attachments: AttachmentReader) -> list[Document]:
    message = email.message_from_bytes(data, policy=email.policy.default)
    if not isinstance(message, EmailMessage) or not message.keys():
        raise Skip("not an email message (no headers)")
    try:
        return _message(message, "", attachments, notes)
    except (LookupError, ValueError, UnicodeError) as exc:
        raise Skip(f"an email message that cannot be decoded ({type(exc).__name__}: {exc})") from exc


def read_mbox(data: bytes, notes: list[str], attachments: AttachmentReader) -> list[Document]:
    # mailbox reads a file; the bytes are already in memory, so they go through a temporary one
    handle, path = tempfile.mkstemp(suffix=".mbox")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        box = mailbox.mbox(path, factory=None, create=False)
        docs: list[Document] = []
        keys: set[str] = set()
        left_out: list[str] = []
        for number, key in enumerate(box.iterkeys(), start=1):
            try:
                raw = box.get_bytes(key)
                message = email.message_from_bytes(raw, policy=email.policy.default)
                assert isinstance(message, EmailMessage)
                name = str(message["message-id"] or "").strip().strip("<>") or f"message-{number}"
                if name in keys:
                    name = f"{name}-{number}"
                keys.add(name)
                docs += _message(message, name, attachments, notes)
            except (LookupError, ValueError, UnicodeError, AssertionError) as exc:
                left_out.append(f"{number} ({type(exc).__name__}: {str(exc)[:80]})")
        box.close()
    finally:
        os.unlink(path)
    if left_out:
        shown = ", ".join(left_out[:5]) + (", ..." if len(left_out) > 5 else "")
        notes.append(f"{len(left_out)} message{'s' if len(left_out) != 1 else ''} left out, unreadable: {shown}")
    if not docs and not left_out:
        raise Skip("not a mailbox (no message starts with a 'From ' line)")
    return docs
