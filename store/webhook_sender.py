"""Send one webhook attempt: sign the exact bytes, POST them to the checked address, classify the answer.

``X-Webhook-Signature: t=<unix>,v1=<hex>`` is HMAC-SHA256 (key: the secret's UTF-8 bytes) over
``f"{t}." + body`` — the body sent is exactly the bytes signed, and every attempt is signed afresh
with its own ``t`` (a receiver can refuse stale timestamps). The URL goes through the media SSRF
policy at send time: its host is resolved, every address must be public (unless
``allow_private_urls``), the connection is pinned to the checked address, and redirects are never
followed (a 3xx is a permanent failure: following it could lead anywhere).
"""

from __future__ import annotations

import hashlib
import hmac
import time

import httpx

from store.media_fetch import MediaError, check_peer, pinned_request
from visiongrid.settings import Settings

__all__ = ["SendResult", "send", "sign"]


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The ``X-Webhook-Signature`` value of ``body`` at ``timestamp``."""
    digest = hmac.new(secret.encode("utf-8"), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


class SendResult:
    """``status_code`` (None: no HTTP answer), ``error`` (why not delivered), ``retryable``."""

    def __init__(self, status_code: int | None, error: str | None, retryable: bool, duration_ms: float) -> None:
        self.status_code, self.error, self.retryable, self.duration_ms = status_code, error, retryable, duration_ms

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def send(
    *, url: str, body: bytes, secret: str | None, webhook_id: str, delivery_id: str, event_type: str, settings: Settings
) -> SendResult:
    """One attempt. 2xx delivered; 3xx and 4xx permanent; 5xx, timeouts and network errors retryable."""
    started = time.perf_counter()

    def result(code: int | None, error: str | None, retryable: bool) -> SendResult:
        return SendResult(code, error, retryable, (time.perf_counter() - started) * 1000)

    headers = {
        "Content-Type": "application/json",
        "User-Agent": "VisionGrid-Webhooks/1",
        "X-Webhook-Id": webhook_id,
        "X-Webhook-Delivery": delivery_id,
        "X-Webhook-Event": event_type,
    }
    if secret is not None:
        headers["X-Webhook-Signature"] = sign(secret, int(time.time()), body)
    try:
        target, pin_headers, extensions = pinned_request(url, settings, "url")
        timeout = httpx.Timeout(settings.webhook_timeout_s)
        with httpx.Client(timeout=timeout, follow_redirects=False, trust_env=False) as client:
            response = client.post(target, content=body, headers={**headers, **pin_headers}, extensions=extensions)
            check_peer(response, settings, "url")
    except MediaError as exc:  # a URL that now resolves somewhere private, or no longer resolves
        return result(None, f"{exc.code}: {exc.message}", exc.code != "url_not_allowed")
    except httpx.TimeoutException:
        return result(None, f"timed out after {settings.webhook_timeout_s:g} s", True)
    except httpx.HTTPError as exc:
        return result(None, f"{type(exc).__name__}: {exc}", True)
    code = response.status_code
    if 200 <= code < 300:
        return result(code, None, False)
    if 300 <= code < 400:
        return result(code, f"HTTP {code}: redirects are not followed", False)
    return result(code, f"HTTP {code}", code >= 500)
