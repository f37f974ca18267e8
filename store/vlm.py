"""Client for external OpenAI-compatible vision-language providers of the ``describe`` step.

No captioning model can run offline here, so a richer description than the built-in one
(:mod:`pipelines.describe`) comes from an endpoint the operator configures by URL
(``Settings.vlm_providers``, validated at start-up). This module is the one place that talks to such
endpoints: one ``httpx.AsyncClient``, one chat-completions request per description, every failure
turned into a :class:`ProviderError` the provider chain can fail over on. Like the other clients of
external services in ``store/``, it knows nothing of pipelines, deployments or HTTP routes.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Final

import cv2
import httpx
import numpy as np
import numpy.typing as npt

from contract.errors import ErrorCode, VisionGridError
from visiongrid.settings import Settings

__all__ = [
    "DEFAULT_SYSTEM_PROMPT",
    "PROVIDER_BAD_RESPONSE",
    "PROVIDER_HTTP_ERROR",
    "PROVIDER_TIMEOUT",
    "PROVIDER_UNREACHABLE",
    "ProviderConfig",
    "ProviderError",
    "VLMClient",
    "chat_request",
    "encode_jpeg",
    "providers_from_settings",
]

DEFAULT_SYSTEM_PROMPT = (
    "You describe images for a video analysis service. Be factual and brief (one to three sentences). "
    "Do not guess identities of people."
)

# What kind of provider failure a ProviderError is (its ``code``). The chain fails over on any of them;
# a client only ever sees the describe_failed error the chain raises when it may not (or cannot) move on.
PROVIDER_HTTP_ERROR: Final = "provider_http_error"
PROVIDER_TIMEOUT: Final = "provider_timeout"
PROVIDER_UNREACHABLE: Final = "provider_unreachable"
PROVIDER_BAD_RESPONSE: Final = str(ErrorCode.PROVIDER_BAD_RESPONSE)


@dataclass(frozen=True)
class ProviderConfig:
    """One provider as the client calls it: a settings entry with its timeout resolved.

    ``url`` is the API base, e.g. ``http://host:8000/v1``; the key stays out of ``repr`` (and so logs).
    """

    name: str
    url: str
    model: str
    api_key: str = field(default="", repr=False)
    timeout_s: float = 30.0


def providers_from_settings(settings: Settings) -> list[ProviderConfig]:
    """The configured providers in priority order, an unset ``timeout_s`` being ``vlm_timeout_s``.

    Nothing here can fail: ``Settings`` validated every entry (fields, http(s) URL, unique names) when
    it was built.
    """
    return [
        ProviderConfig(
            name=entry.name,
            url=entry.url,
            model=entry.model,
            api_key=entry.api_key,
            timeout_s=entry.timeout_s if entry.timeout_s is not None else settings.vlm_timeout_s,
        )
        for entry in settings.vlm_providers
    ]


class ProviderError(VisionGridError):
    """A provider call failed: HTTP status >= 400, timeout, connection failure or a malformed answer.

    Attributes:
        provider: the configured provider name.
        provider_status: the HTTP status the provider answered, else ``None`` (``status`` is, as on
            every :class:`VisionGridError`, the HTTP status of ``code``).
        message: what went wrong, for logs and the task's error.
        code: a short machine-readable kind: :data:`PROVIDER_HTTP_ERROR`, :data:`PROVIDER_TIMEOUT`,
            :data:`PROVIDER_UNREACHABLE` or :data:`PROVIDER_BAD_RESPONSE`.
    """

    def __init__(self, provider: str, status: int | None, message: str, code: str = PROVIDER_HTTP_ERROR) -> None:
        super().__init__(code, message)
        self.provider = provider
        self.provider_status = status

    def __str__(self) -> str:
        answered = f" answered {self.provider_status}" if self.provider_status else ""
        return f"provider {self.provider!r}{answered}: {self.message}"


def encode_jpeg(image: npt.NDArray[np.uint8], *, max_side: int = 1024, quality: int = 85) -> bytes:
    """JPEG bytes of an RGB ``uint8 HxWx3`` image, downscaled so its longer side is at most ``max_side``."""
    if image.ndim != 3 or image.shape[2] != 3 or image.shape[0] == 0 or image.shape[1] == 0:
        raise ValueError(f"expected an HxWx3 RGB image, got shape {image.shape}")
    height, width = image.shape[:2]
    scale = max_side / max(height, width)
    bgr = cv2.cvtColor(np.ascontiguousarray(image, dtype=np.uint8), cv2.COLOR_RGB2BGR)
    if scale < 1:
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        bgr = cv2.resize(bgr, size, interpolation=cv2.INTER_AREA)
    ok, buffer = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return buffer.tobytes()


def chat_request(
    model: str, image_jpeg: bytes, prompt: str, *, max_tokens: int, system_prompt: str | None
) -> dict[str, Any]:
    """The OpenAI chat-completions body asking ``model`` to describe one image."""
    data_url = "data:image/jpeg;base64," + base64.b64encode(image_jpeg).decode("ascii")
    messages: list[dict[str, Any]] = []
    if system_prompt:
        messages.append({"role": "system", "content": system_prompt})
    messages.append(
        {
            "role": "user",
            "content": [
                {"type": "text", "text": prompt},
                {"type": "image_url", "image_url": {"url": data_url}},
            ],
        }
    )
    return {"model": model, "messages": messages, "max_tokens": max_tokens}


def _content(provider: str, status: int, body: Any) -> str:
    """``choices[0].message.content`` as text; anything else is a malformed answer."""
    try:
        content = body["choices"][0]["message"]["content"]
    except (KeyError, IndexError, TypeError) as error:
        raise ProviderError(provider, status, f"malformed response: no choices[0].message.content ({error!r})",
                            PROVIDER_BAD_RESPONSE) from error  # fmt: skip
    if isinstance(content, list):  # some servers answer content parts
        content = "".join(part.get("text", "") for part in content if isinstance(part, dict))
    if not isinstance(content, str) or not content.strip():
        raise ProviderError(provider, status, "malformed response: empty or non-text content", PROVIDER_BAD_RESPONSE)
    return content.strip()


class VLMClient:
    """One shared ``httpx.AsyncClient`` for every provider call of a process (or replica)."""

    def __init__(
        self,
        client: httpx.AsyncClient | None = None,
        *,
        max_tokens: int = 300,
        system_prompt: str | None = DEFAULT_SYSTEM_PROMPT,
        max_side: int = 1024,
        jpeg_quality: int = 85,
    ) -> None:
        self._client = client or httpx.AsyncClient(follow_redirects=False)
        self.max_tokens = max_tokens
        self.system_prompt = system_prompt
        self.max_side = max_side
        self.jpeg_quality = jpeg_quality

    async def aclose(self) -> None:
        await self._client.aclose()

    async def __aenter__(self) -> VLMClient:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        await self.aclose()

    async def describe(self, provider: ProviderConfig, image: npt.NDArray[np.uint8], prompt: str) -> str:
        """The provider's description of ``image``; every failure is a :class:`ProviderError`."""
        body = chat_request(
            provider.model,
            encode_jpeg(image, max_side=self.max_side, quality=self.jpeg_quality),
            prompt,
            max_tokens=self.max_tokens,
            system_prompt=self.system_prompt,
        )
        headers = {"Authorization": f"Bearer {provider.api_key}"} if provider.api_key else {}
        url = provider.url.rstrip("/") + "/chat/completions"
        try:
            response = await self._client.post(url, json=body, headers=headers, timeout=provider.timeout_s)
        except httpx.TimeoutException as error:
            raise ProviderError(
                provider.name, None, f"timed out after {provider.timeout_s:g} s ({type(error).__name__})",
                PROVIDER_TIMEOUT,
            ) from error  # fmt: skip
        except httpx.HTTPError as error:
            raise ProviderError(
                provider.name, None, f"cannot reach {url}: {type(error).__name__}: {error}", PROVIDER_UNREACHABLE
            ) from error
        if response.status_code >= 400:
            detail = response.text[:300].strip()
            raise ProviderError(provider.name, response.status_code, detail or response.reason_phrase)
        try:
            parsed = response.json()
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise ProviderError(
                provider.name, response.status_code, f"malformed response: not JSON ({error})", PROVIDER_BAD_RESPONSE
            ) from error
        return _content(provider.name, response.status_code, parsed)
