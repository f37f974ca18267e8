"""The one error model: a stable code, a message, the request field at fault, and an HTTP status.

Errors are raised where they arise (a parser, the object store, a model step) as a
:class:`VisionGridError` (or a subclass that fills in the code); ``api/errors.py`` is the only place
that turns one into an HTTP response, and the task runner stores ``code``/``message`` of the same
error on a failed task. The status of every code lives in :data:`STATUS`, so a code means the same
thing wherever it is seen — in a 4xx response body, in a task's ``error`` and in an SSE error chunk.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, ClassVar, Final

__all__ = ["STATUS", "ErrorCode", "PlanError", "VisionGridError", "status_of"]


class ErrorCode(StrEnum):
    """Every machine-readable error code the API and the task runner report."""

    # --- the request itself (400) ---------------------------------------------------------------
    INVALID_REQUEST = "invalid_request"
    INVALID_JSON = "invalid_json"
    INVALID_FILTER = "invalid_filter"
    INVALID_BASE64 = "invalid_base64"
    INVALID_PATH = "invalid_path"
    INVALID_CHUNK_LENGTH = "invalid_chunk_length"
    MISSING_CHUNKS = "missing_chunks"
    CHECKSUM_MISMATCH = "checksum_mismatch"
    UNSUPPORTED_MODALITY = "unsupported_modality"
    MODEL_MISMATCH = "model_mismatch"
    DIMENSION_MISMATCH = "dimension_mismatch"
    TOO_MANY_ITEMS = "too_many_items"
    TOO_MANY_IMAGES = "too_many_images"
    DUPLICATE_ID = "duplicate_id"
    NOTHING_TO_INDEX = "nothing_to_index"
    NO_FACE = "no_face"
    NO_TRACK_EMBEDDING = "no_track_embedding"
    # --- media the request points at (400 unless too large) ----------------------------------------
    MEDIA_NOT_FOUND = "media_not_found"
    MEDIA_UNREACHABLE = "media_unreachable"
    MEDIA_NOT_STREAMABLE = "media_not_streamable"
    URL_NOT_ALLOWED = "url_not_allowed"
    UNSUPPORTED_PROTOCOL = "unsupported_protocol"
    NOT_AN_IMAGE = "not_an_image"
    CORRUPT_IMAGE = "corrupt_image"
    EMPTY_IMAGE = "empty_image"
    NOT_A_VIDEO = "not_a_video"
    CORRUPT_VIDEO = "corrupt_video"
    UNSUPPORTED_CODEC = "unsupported_codec"
    FRAME_TOO_LARGE = "frame_too_large"
    VIDEO_TOO_LONG = "video_too_long"
    STAGED_MEDIA_MISSING = "staged_media_missing"
    # --- too large (413) -----------------------------------------------------------------------
    MEDIA_TOO_LARGE = "media_too_large"
    IMAGE_TOO_LARGE = "image_too_large"
    OBJECT_TOO_LARGE = "object_too_large"
    BODY_TOO_LARGE = "body_too_large"
    # --- who is asking (401/403) ----------------------------------------------------------------
    UNAUTHORIZED = "unauthorized"
    INSUFFICIENT_SCOPE = "insufficient_scope"
    RATE_LIMITED = "rate_limited"
    # --- what is asked for (404/405/409) ----------------------------------------------------------
    NOT_FOUND = "not_found"
    TASK_NOT_SUCCEEDED = "task_not_succeeded"
    METHOD_NOT_ALLOWED = "method_not_allowed"
    COLLECTION_EXISTS = "collection_exists"
    UPLOAD_CLOSED = "upload_closed"
    KEY_REVOKED = "key_revoked"
    WEBHOOK_DISABLED = "webhook_disabled"
    IDEMPOTENCY_IN_PROGRESS = "idempotency_in_progress"
    IDEMPOTENCY_KEY_REUSED = "idempotency_key_reused"
    # --- the server and what it depends on (5xx) --------------------------------------------------
    INTERNAL_ERROR = "internal_error"
    DETECTOR_ERROR = "detector_error"
    OCR_ERROR = "ocr_error"
    FEATURE_ERROR = "feature_error"
    FACE_ERROR = "face_error"
    DESCRIBE_ERROR = "describe_error"
    STEPS_ERROR = "steps_error"
    RUNNER_LOST = "runner_lost"
    DEADLINE_EXCEEDED = "deadline_exceeded"
    DESCRIBE_FAILED = "describe_failed"
    PROVIDER_BAD_RESPONSE = "provider_bad_response"
    PROVIDER_HTTP_ERROR = "provider_http_error"
    PROVIDER_TIMEOUT = "provider_timeout"
    PROVIDER_UNREACHABLE = "provider_unreachable"
    STORAGE_UNAVAILABLE = "storage_unavailable"
    VECTORS_UNAVAILABLE = "vectors_unavailable"
    MODELS_UNAVAILABLE = "models_unavailable"
    NOT_READY = "not_ready"


_BY_STATUS: Final[dict[int, tuple[ErrorCode, ...]]] = {
    401: (ErrorCode.UNAUTHORIZED,),
    403: (ErrorCode.INSUFFICIENT_SCOPE,),
    404: (ErrorCode.NOT_FOUND, ErrorCode.TASK_NOT_SUCCEEDED),
    405: (ErrorCode.METHOD_NOT_ALLOWED,),
    409: (
        ErrorCode.COLLECTION_EXISTS,
        ErrorCode.UPLOAD_CLOSED,
        ErrorCode.KEY_REVOKED,
        ErrorCode.WEBHOOK_DISABLED,
        ErrorCode.IDEMPOTENCY_IN_PROGRESS,
    ),
    413: (ErrorCode.MEDIA_TOO_LARGE, ErrorCode.IMAGE_TOO_LARGE, ErrorCode.OBJECT_TOO_LARGE, ErrorCode.BODY_TOO_LARGE),
    422: (ErrorCode.IDEMPOTENCY_KEY_REUSED,),
    429: (ErrorCode.RATE_LIMITED,),
    500: (
        ErrorCode.INTERNAL_ERROR,
        ErrorCode.DETECTOR_ERROR,
        ErrorCode.OCR_ERROR,
        ErrorCode.FEATURE_ERROR,
        ErrorCode.FACE_ERROR,
        ErrorCode.DESCRIBE_ERROR,
        ErrorCode.STEPS_ERROR,
        ErrorCode.RUNNER_LOST,
        ErrorCode.DEADLINE_EXCEEDED,
    ),
    502: (
        ErrorCode.DESCRIBE_FAILED,
        ErrorCode.PROVIDER_BAD_RESPONSE,
        ErrorCode.PROVIDER_HTTP_ERROR,
        ErrorCode.PROVIDER_TIMEOUT,
        ErrorCode.PROVIDER_UNREACHABLE,
    ),
    503: (
        ErrorCode.STORAGE_UNAVAILABLE,
        ErrorCode.VECTORS_UNAVAILABLE,
        ErrorCode.MODELS_UNAVAILABLE,
        ErrorCode.NOT_READY,
    ),
}

#: The HTTP status of every code; a code not listed under another status is a 400.
STATUS: Final[dict[ErrorCode, int]] = {
    code: next((status for status, codes in _BY_STATUS.items() if code in codes), 400) for code in ErrorCode
}


def status_of(code: str) -> int:
    """The HTTP status of ``code`` (an unknown code — one a newer runner stored — is a 500)."""
    try:
        return STATUS[ErrorCode(code)]
    except ValueError:
        return 500


class VisionGridError(Exception):
    """The base of every error VisionGrid reports to a client.

    ``field`` is the request path of the offending value, written the way the client wrote it
    (``input[0].sampling.value``, ``steps[1].when.class_is[0]``). ``extra`` adds members to the error
    object of the response (``status`` of a task that has not succeeded, ``missing`` chunks). It
    pickles with all of that, because errors raised inside a Ray replica are re-raised in the ingress.
    """

    #: Whether the response's message starts with the field (``steps[0].model: ...``): request errors'
    #: messages always have, other errors' (media, models) never.
    field_in_message: ClassVar[bool] = False

    def __init__(self, code: ErrorCode | str, message: str, field: str | None = None, **extra: Any) -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.code = str(code)
        self.message = message
        self.field = field
        self.extra = extra

    @property
    def status(self) -> int:
        """The HTTP status of this error's code (from :data:`STATUS`)."""
        return status_of(self.code)

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), self.code, self.message, self.field, self.extra, self.__dict__))


def _rebuild(
    cls: type[VisionGridError],
    code: str,
    message: str,
    field: str | None,
    extra: dict[str, Any],
    state: dict[str, Any],
) -> VisionGridError:
    """Unpickle any subclass without calling its (possibly different) ``__init__``."""
    error = cls.__new__(cls)
    VisionGridError.__init__(error, code, message, field, **extra)
    error.__dict__.update(state)
    return error


class PlanError(VisionGridError, ValueError):
    """A request that cannot be executed as written: a 400 ``invalid_request`` naming ``field``.

    Raised inside a contract validator, ``field`` is *relative* to where the validator runs
    (``[2].model`` from the validator of a ``steps`` list, ``url`` from an input's): pydantic wraps
    it as a ``value_error`` at that location, and :func:`contract.common.plan_error` joins the two
    into the exact path a client wrote (``steps[2].model``).
    """

    field_in_message = True

    def __init__(self, field: str, message: str, code: ErrorCode | str = ErrorCode.INVALID_REQUEST) -> None:
        super().__init__(code, message, field)
