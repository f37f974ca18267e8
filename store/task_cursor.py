"""The task list's paging cursor and the bounds of its time filters: client input, decoded defensively.

A cursor is opaque to clients but travels through their hands, so decoding it is parsing untrusted
text: anything that is not a cursor this store wrote — garbage, an ISO date whose UTC value falls off
the ``datetime`` range (``9999-12-31T23:59:59-14:00``), an id that is no task id — is a
:class:`TaskQueryError`, a ``ValueError`` the API answers with a 400. Python reports such dates as
``OverflowError`` (and some platforms as ``OSError``); neither may escape as a 500.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import re
from typing import Final

from store.records import TaskKind, TaskRecord
from store.tables import to_utc

__all__ = ["TaskQueryError", "decode_cursor", "encode_cursor", "utc_bound"]

#: A task id's part after the kind prefix: a ULID in Crockford base32.
_ULID: Final[re.Pattern[str]] = re.compile(r"[0-9A-HJKMNP-TV-Z]{26}")


class TaskQueryError(ValueError):
    """A task-list parameter that cannot be used; ``field`` is the store's parameter name.

    ``str()`` is the field name (``"cursor"``, ``"created_from"``, ``"created_to"``), as the plain
    ``ValueError("cursor")`` raised before it, so messages built from it stay the same.
    """

    def __init__(self, field: str) -> None:
        super().__init__(field)
        self.field = field


def encode_cursor(record: TaskRecord) -> str:
    """The cursor of the position just after ``record`` in the newest-first order."""
    raw = f"{record.created_at.isoformat()}|{record.id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, kind: TaskKind) -> tuple[dt.datetime, str]:
    """The (created_at, id) position a cursor of a ``kind`` list stands for; else ``TaskQueryError("cursor")``."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        created, task_id = raw.split("|", 1)
        created_at = dt.datetime.fromisoformat(created)
        if created_at.tzinfo is None:
            raise ValueError("naive time")
        created_at = to_utc(created_at)
    except (binascii.Error, UnicodeError, ValueError, OverflowError, OSError):
        raise TaskQueryError("cursor") from None
    if not kind.owns(task_id) or _ULID.fullmatch(task_id[len(kind.prefix) :]) is None:
        raise TaskQueryError("cursor")
    return created_at, task_id


def utc_bound(value: dt.datetime | None, field: str) -> dt.datetime | None:
    """``value`` in UTC for a comparison in SQL; ``TaskQueryError(field)`` when UTC cannot hold it.

    Converted here rather than in the column type's bind step, where the same overflow would surface
    wrapped in a SQLAlchemy ``StatementError``.
    """
    if value is None:
        return None
    try:
        return to_utc(value)
    except (OverflowError, OSError, ValueError):
        raise TaskQueryError(field) from None
