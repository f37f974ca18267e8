"""Recognise and verify VisionGrid's own presigned GET URLs, so they can be read as storage.

The documented flow is upload → presign → process: a client hands back a presigned URL of the
configured S3 endpoint as ``input[].url``. That endpoint is usually private (in-cluster, loopback),
which the SSRF guard refuses, and fetching it over HTTP would be a detour anyway. So a URL whose
origin is ``s3_endpoint_url`` or ``s3_public_endpoint_url`` is verified here and then read through the
object store: path style ``/{bucket}/{key}`` of our bucket, ``AWS4-HMAC-SHA256`` query signing with our
access key and region, signing only ``host``, not expired, and a signature that matches one recomputed
with our secret (botocore's own SigV4 query signer, fed the URL's timestamp, compared in constant
time). Any difference is a refusal: the caller cannot make the server read a key it was not given.
Which *project* the key belongs to is checked by the caller (:func:`store.media.resolve_media_url`).
"""

from __future__ import annotations

import datetime as dt
import hmac
from typing import TYPE_CHECKING, Final
from urllib.parse import SplitResult, parse_qsl, unquote, urlsplit

from botocore.auth import S3SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from contract.errors import ErrorCode
from store.media_fetch import MediaError

if TYPE_CHECKING:
    from visiongrid.settings import Settings

_ALGORITHM: Final[str] = "AWS4-HMAC-SHA256"
_TIMESTAMP: Final[str] = "%Y%m%dT%H%M%SZ"
_MAX_EXPIRES_S: Final[int] = 7 * 24 * 3600  # SigV4's own cap
_CLOCK_SKEW_S: Final[int] = 15 * 60  # a URL dated this far in the future is still accepted (S3 does the same)


def _origin(parts: SplitResult) -> tuple[str, str, int] | None:
    try:
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        return None
    return scheme, parts.hostname.lower(), port or (443 if scheme == "https" else 80)


def _endpoint_path(url: str, settings: Settings) -> str | None:
    """The path prefix of the configured endpoint ``url`` belongs to (``""`` at the root), else None."""
    parts = urlsplit(url)
    origin = _origin(parts)
    for endpoint in (settings.s3_endpoint_url, settings.s3_public_endpoint_url):
        if not endpoint or origin is None:
            continue
        configured = urlsplit(endpoint)
        base = configured.path.rstrip("/")
        if _origin(configured) == origin and (parts.path == base or parts.path.startswith(base + "/")):
            return base
    return None


def is_own_endpoint(url: str, settings: Settings) -> bool:
    """Whether ``url`` points at the configured S3 endpoint (internal or public)."""
    return _endpoint_path(url, settings) is not None


def _refuse(message: str, field: str) -> MediaError:
    return MediaError(ErrorCode.URL_NOT_ALLOWED, f"not a valid presigned URL of this service: {message}", field)


def _signed_at(params: dict[str, str], field: str) -> tuple[dt.datetime, int]:
    try:
        signed = dt.datetime.strptime(params["X-Amz-Date"], _TIMESTAMP).replace(tzinfo=dt.UTC)
        expires = int(params["X-Amz-Expires"])
    except (KeyError, ValueError):
        raise _refuse("X-Amz-Date / X-Amz-Expires missing or malformed", field) from None
    if not 1 <= expires <= _MAX_EXPIRES_S:
        raise _refuse("X-Amz-Expires out of range", field)
    now = dt.datetime.now(dt.UTC)
    if now > signed + dt.timedelta(seconds=expires):
        raise MediaError(ErrorCode.URL_NOT_ALLOWED, "the presigned URL has expired", field)
    if signed > now + dt.timedelta(seconds=_CLOCK_SKEW_S):
        raise _refuse("signed in the future", field)
    return signed, expires


def _expected_signature(url: str, timestamp: str, settings: Settings) -> str:
    """The signature our credentials give ``url`` (its query without X-Amz-Signature) at ``timestamp``."""
    credentials = Credentials(settings.s3_access_key, settings.s3_secret_key)
    signer = S3SigV4QueryAuth(credentials, "s3", settings.s3_region)
    request = AWSRequest(method="GET", url=url, headers={})
    request.context["timestamp"] = timestamp
    canonical = signer.canonical_request(request)
    return str(signer.signature(signer.string_to_sign(request, canonical), request))


def _check_signature(url: str, params: dict[str, str], settings: Settings, field: str) -> None:
    if params.get("X-Amz-Algorithm") != _ALGORITHM or params.get("X-Amz-SignedHeaders") != "host":
        raise _refuse("unexpected signing algorithm or signed headers", field)
    timestamp = params.get("X-Amz-Date", "")
    scope = f"{settings.s3_access_key}/{timestamp[:8]}/{settings.s3_region}/s3/aws4_request"
    if not hmac.compare_digest(params.get("X-Amz-Credential", ""), scope):
        raise _refuse("signed with other credentials", field)
    parts = urlsplit(url)
    query = "&".join(pair for pair in parts.query.split("&") if not pair.startswith("X-Amz-Signature="))
    unsigned = parts._replace(query=query, fragment="").geturl()
    expected = _expected_signature(unsigned, timestamp, settings)
    if not hmac.compare_digest(params.get("X-Amz-Signature", ""), expected):
        raise _refuse("the signature does not match", field)


def presigned_key(url: str, settings: Settings, field: str) -> str | None:
    """The S3 key a presigned GET URL of ours names, after verifying it; None when ``url`` does not
    point at the configured S3 endpoint. A URL of the endpoint that fails any check (another bucket,
    tampered, expired, other credentials) is :class:`MediaError` ``url_not_allowed`` on ``field``."""
    base = _endpoint_path(url, settings)
    if base is None:
        return None
    parts = urlsplit(url)
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    params = dict(pairs)
    if len(params) != len(pairs):
        raise _refuse("repeated query parameters", field)
    bucket, _, key = parts.path[len(base) :].lstrip("/").partition("/")
    if unquote(bucket) != settings.s3_bucket or not key:
        raise _refuse("it names another bucket, or no object", field)
    _signed_at(params, field)
    _check_signature(url, params, settings, field)
    return unquote(key)
