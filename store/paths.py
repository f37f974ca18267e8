"""Object paths of project storage: the rules a user path must follow, and the storage errors.

A project's objects live under ``projects/{project}/`` of one bucket. A user path is validated
strictly rather than "cleaned up" (no ``..``, no absolute paths, no empty segments, no backslashes
or control characters): a path that needs fixing is more likely an attack or a bug than a typo, and
silently rewriting ``a/../b`` would make two spellings name one object. S3 caps a key at 1024 bytes,
*including* the project prefix, so :func:`object_key` checks the whole key: a path that fits alone
but not once prefixed is refused as ``invalid_path`` naming the field, before anything is sent.
"""

from __future__ import annotations

import re
from typing import Final

from contract.errors import ErrorCode, VisionGridError

STORAGE_SCHEME: Final[str] = "storage://"
MAX_PATH_BYTES: Final[int] = 1024  # S3's limit on a whole key
_PROJECT_RE: Final[re.Pattern[str]] = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


class StoragePathError(VisionGridError, ValueError):
    """A path (or project) that could escape its project or that S3 would mangle: 400 ``invalid_path``."""

    field_in_message = True

    def __init__(self, message: str, field: str = "path") -> None:
        super().__init__(ErrorCode.INVALID_PATH, message, field)


class ObjectNotFound(VisionGridError, LookupError):  # noqa: N818 - name fixed by the API spec
    """The object (or multipart upload) does not exist in this project: 404 ``not_found``."""

    def __init__(self, message: str = "file not found") -> None:
        super().__init__(ErrorCode.NOT_FOUND, message)


class ObjectTooLarge(VisionGridError, ValueError):  # noqa: N818 - name fixed by the API spec
    """More bytes than the limit (``storage_max_object_bytes``): 413 ``object_too_large`` on ``size``."""

    def __init__(self, message: str) -> None:
        super().__init__(ErrorCode.OBJECT_TOO_LARGE, message, "size")


class StorageRequestError(VisionGridError, ValueError):
    """An argument of a storage call out of its range (expiry, page size, part number): 400."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(ErrorCode.INVALID_REQUEST, message, field)


def _path_problem(path: str) -> str | None:
    if not path:
        return "must not be empty"
    if len(path.encode("utf-8", errors="surrogatepass")) > MAX_PATH_BYTES:
        return f"longer than {MAX_PATH_BYTES} bytes"
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in path):
        return "contains control characters"
    if "\\" in path:
        return "contains a backslash; use '/'"
    if path.startswith("/"):
        return "must be relative to the project (no leading '/')"
    if path.endswith("/"):
        return "must name an object, not end with '/'"
    segments = path.split("/")
    if any(seg == "" for seg in segments):
        return "contains an empty segment ('//')"
    if any(seg in (".", "..") for seg in segments):
        return "must not contain '.' or '..' segments"
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        return "is not valid UTF-8"
    return None


def normalise_path(path: str, field: str = "path", project: str | None = None) -> str:
    """Validate a project-relative object path and return it in canonical form (``a/b/c.mp4``).

    With ``project``, the whole S3 key (prefix included) must also fit in :data:`MAX_PATH_BYTES`.
    """
    if not isinstance(path, str):
        raise StoragePathError("must be a string", field)
    if path.startswith(STORAGE_SCHEME):
        path = path[len(STORAGE_SCHEME) :]
    problem = _path_problem(path)
    if problem is not None:
        raise StoragePathError(problem, field)
    if project is not None:
        object_key(project, path, field)
    return path


def normalise_prefix(prefix: str) -> str:
    """A listing prefix: empty, or a path that may end with '/' (a folder) — same rules otherwise."""
    if prefix.startswith(STORAGE_SCHEME):
        prefix = prefix[len(STORAGE_SCHEME) :]
    if not prefix:
        return ""
    if prefix.endswith("/"):
        return normalise_path(prefix[:-1], "prefix") + "/"
    return normalise_path(prefix, "prefix")


def check_project(project: str) -> str:
    """Project ids become a key segment, so they must not contain '/' or be '.'/'..'."""
    if not isinstance(project, str) or not _PROJECT_RE.match(project) or project in (".", ".."):
        raise StoragePathError("invalid project id", "project")
    return project


def project_prefix(project: str) -> str:
    """``projects/{project}/``: where every object of the project lives."""
    return f"projects/{check_project(project)}/"


def object_key(project: str, path: str, field: str = "path") -> str:
    """The full S3 key of a project's object — the only place keys are built."""
    prefix = project_prefix(project)
    key = prefix + normalise_path(path, field)
    if len(key.encode("utf-8")) > MAX_PATH_BYTES:
        room = MAX_PATH_BYTES - len(prefix.encode("utf-8"))
        raise StoragePathError(
            f"longer than {room} bytes (S3 keys are at most {MAX_PATH_BYTES} with the project prefix)", field
        )
    return key


def storage_url(path: str) -> str:
    """The ``storage://`` URL of a project-relative path (what task inputs and outputs refer to)."""
    return STORAGE_SCHEME + normalise_path(path)
