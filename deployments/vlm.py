"""Client for external OpenAI-compatible vision-language providers of the `describe` step.

No captioning model can run offline here, so a richer description than the built-in one
(:mod:`pipelines.describe`) comes from an endpoint the operator configures by URL
(``vlm_providers``). This module is the one place that talks to such endpoints: one
``httpx.AsyncClient``, one chat-completions request per description, every failure turned
into a :class:`ProviderError` the provider chain can fail over on.
"""

from __future__ import annotations

import base64
import json
from types import TracebackType
from typing import TYPE_CHECKING, Any

import cv2
import httpx
import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from pipelines.describe import ProviderConfig

DEFAULT_SYSTEM_PROMPT = (
    "You describe images for a video analysis service. Be factual and brief (one to three sentences). "
    "Do not guess identities of people."
)


class ProviderError(Exception):
    """A provider call failed: HTTP status >= 400, timeout, connection failure or a malformed answer.

    Attributes:
        provider: the configured provider name.
        status: the HTTP status when the provider answered one, else ``None``.
        message: what went wrong, for logs and the task's error.
        code: a short machine-readable kind: ``provider_http_error``, ``provider_timeout``,
            ``provider_unreachable`` or ``provider_bad_response``.
    """

    def __init__(self, provider: str, status: int | None, message: str, code: str = "provider_http_error") -> None:
        super().__init__(f"provider {provider!r}" + (f" answered {status}" if status else "") + f": {message}")
        self.provider = provider
        self.status = status
        self.message = message
        self.code = code


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
                            "provider_bad_response") from error  # fmt: skip
    if isinstance(content, list):  # some servers answer content parts
        content = "".join(part.get("text", "") for part in content if isinstance(part, dict))
    if not isinstance(content, str) or not content.strip():
        raise ProviderError(provider, status, "malformed response: empty or non-text content", "provider_bad_response")
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
                "provider_timeout",
            ) from error  # fmt: skip
        except httpx.HTTPError as error:
            raise ProviderError(
                provider.name, None, f"cannot reach {url}: {type(error).__name__}: {error}", "provider_unreachable"
            ) from error
        if response.status_code >= 400:
            detail = response.text[:300].strip()
            raise ProviderError(provider.name, response.status_code, detail or response.reason_phrase)
        try:
            parsed = response.json()
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise ProviderError(
                provider.name, response.status_code, f"malformed response: not JSON ({error})", "provider_bad_response"
            ) from error
        return _content(provider.name, response.status_code, parsed)
