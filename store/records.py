"""Plain, immutable views of stored rows: what the rest of the code sees of the database.

ORM objects never leave ``store/``; these frozen dataclasses do, so a record can cross a Ray
boundary or an HTTP handler without a live session behind it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Final, Literal

TaskStatus = Literal["pending", "running", "cancelling", "succeeded", "failed", "cancelled"]
TASK_STATUSES: Final[tuple[str, ...]] = ("pending", "running", "cancelling", "succeeded", "failed", "cancelled")
TERMINAL_STATUSES: Final[frozenset[str]] = frozenset({"succeeded", "failed", "cancelled"})
ACTIVE_STATUSES: Final[frozenset[str]] = frozenset({"running", "cancelling"})


@dataclass(frozen=True)
class TaskRecord:
    """One video task. Times are timezone-aware UTC."""

    id: str  # "vt_" + ULID
    project: str
    status: TaskStatus
    request: dict[str, Any]  # the validated request body, as JSON
    model: str | None  # the request's provider routing hint, echoed back
    created_at: dt.datetime
    started_at: dt.datetime | None = None
    finished_at: dt.datetime | None = None
    heartbeat_at: dt.datetime | None = None
    runner_id: str | None = None
    processed_frames: int = 0
    last_frame_index: int | None = None
    total_frames: int | None = None
    finish_reason: str | None = None
    error_code: str | None = None
    error_message: str | None = None
    usage: dict[str, Any] | None = None
    result: dict[str, Any] | None = None  # the /results body once succeeded
    archive_bytes: int = 0
    staged_media: list[str] = field(default_factory=list)  # staged inputs to delete with the task

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES


@dataclass(frozen=True)
class ApiKeyRecord:
    id: str  # "key_" + ULID; the public handle of a key
    project: str
    prefix: str  # first characters of the secret, to recognise a key in listings
    scopes: tuple[str, ...]
    created_at: dt.datetime
    revoked_at: dt.datetime | None = None


@dataclass(frozen=True)
class CollectionRecord:
    """A vector collection of one project (its vectors live in Chroma, one space per modality)."""

    id: str  # "vc_" + ULID
    project: str
    name: str
    model: str  # the bundle of spaces: multimodal, text, image, face
    metric: str  # cosine, l2, ip
    spaces: tuple[str, ...]
    metadata: dict[str, Any]
    created_at: dt.datetime
