"""Plain, immutable views of stored rows: what the rest of the code sees of the database.

ORM objects never leave ``store/``; these frozen dataclasses do, so a record can cross a Ray
boundary or an HTTP handler without a live session behind it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Final, Literal

TaskStatus = Literal["pending", "running", "cancelling", "succeeded", "failed", "cancelled"]
TASK_STATUSES: Final[tuple[str, ...]] = ("pending", "running", "cancelling", "succeeded", "failed", "cancelled")
TERMINAL_STATUSES: Final[frozenset[str]] = frozenset({"succeeded", "failed", "cancelled"})
ACTIVE_STATUSES: Final[frozenset[str]] = frozenset({"running", "cancelling"})


class TaskKind(StrEnum):
    """The kinds of task sharing the one queue and its runners; a task's id prefix says its kind.

    The kind lives in the id (``vt_`` + ULID, ``ib_`` + ULID) rather than in a column, so a client's
    id already tells a route whether it may answer for it, and rows stored before the enum existed
    (whose image batches also carry ``"kind": "image_batch"`` in their request) keep their kind.
    """

    VIDEO = "video"
    IMAGE_BATCH = "image_batch"

    @property
    def prefix(self) -> str:
        """The id prefix of this kind's tasks (``vt_`` / ``ib_``)."""
        return _PREFIXES[self]

    def owns(self, task_id: str) -> bool:
        """Whether ``task_id`` is an id of this kind (a route's cheap "not mine: 404" check)."""
        return task_id.startswith(self.prefix)

    @classmethod
    def of(cls, task_id: str) -> TaskKind:
        """The kind of ``task_id``; ValueError when its prefix is no kind's."""
        for kind, prefix in _PREFIXES.items():
            if task_id.startswith(prefix):
                return kind
        raise ValueError(f"not a task id: {task_id!r}")

    @classmethod
    def coerce(cls, value: TaskKind | str) -> TaskKind:
        """A kind from itself, its value (``"image_batch"``) or its id prefix (``"ib_"``, the old API)."""
        if isinstance(value, TaskKind):
            return value
        for kind, prefix in _PREFIXES.items():
            if value in (kind.value, prefix):
                return kind
        raise ValueError(f"not a task kind: {value!r}")


_PREFIXES: Final[dict[TaskKind, str]] = {TaskKind.VIDEO: "vt_", TaskKind.IMAGE_BATCH: "ib_"}


@dataclass(frozen=True)
class TaskRecord:
    """One task (a video task or an image batch, see :attr:`kind`). Times are timezone-aware UTC."""

    id: str  # TaskKind.prefix + ULID
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
    max_processing_time_s: float | None = None  # seconds of processing allowed (None: no deadline)
    requested_processing_time_s: float | None = None  # what Max-Processing-Time asked (above the cap: clamped)
    live: bool = False  # a live source: counted against the live-task limits, not the file ones

    @property
    def deadline_clamped(self) -> bool:
        """Whether the requested processing time was cut to the configured cap."""
        requested, used = self.requested_processing_time_s, self.max_processing_time_s
        return requested is not None and used is not None and requested > used

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES

    @property
    def kind(self) -> TaskKind:
        """What the task runs, from its id prefix (ValueError for an id no kind owns)."""
        return TaskKind.of(self.id)


@dataclass(frozen=True)
class ApiKeyRecord:
    id: str  # "key_" + ULID; the public handle of a key
    project: str
    prefix: str  # first characters of the secret, to recognise a key in listings
    scopes: tuple[str, ...]
    created_at: dt.datetime
    revoked_at: dt.datetime | None = None
    name: str = "key"
    last4: str = ""  # the secret's last four characters (empty for keys made before they were kept)
    expires_at: dt.datetime | None = None
    last_used_at: dt.datetime | None = None  # written at most once a minute per key

    def usable_at(self, now: dt.datetime) -> bool:
        """Neither revoked nor expired at ``now``."""
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)


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
