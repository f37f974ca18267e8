"""The external provider chain of a ``describe`` step: which providers a task tries, and failover.

A richer description than the built-in one can come from external OpenAI-compatible
vision-language endpoints configured in ``vlm_providers`` (called through :mod:`store.vlm`);
:class:`DescribeChain` tries them in priority order, failing over to the next one only before the
task's first chunk, as the contract says, and ends with the built-in description.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from pipelines.describe.builtin import BUILTIN_ALIASES, BUILTIN_PROVIDER, Description
from pipelines.describe.errors import DescribeError, UnknownProviderError
from store.vlm import ProviderConfig, ProviderError, providers_from_settings
from visiongrid.settings import Settings

__all__ = ["DescribeChain", "VLMDescriber", "build_prompt", "resolve_chain"]


def resolve_chain(model_hint: str | None, settings: Settings) -> list[str]:
    """Provider names in the order a task tries them.

    ``None``, ``"visiongrid-describe"`` or ``"builtin"`` → the built-in description only. A
    configured provider's name → that provider, then the other configured ones in their
    configured order, then the built-in; at most ``1 + provider_max_retries`` names. Any other
    hint raises :class:`UnknownProviderError`. (A broken provider entry cannot get here: ``Settings``
    refuses it at start-up.)
    """
    if model_hint is None or model_hint in BUILTIN_ALIASES:
        return [BUILTIN_PROVIDER]
    names = [provider.name for provider in settings.vlm_providers]
    if model_hint not in names:
        raise UnknownProviderError(model_hint, [*names, BUILTIN_PROVIDER])
    chain = [model_hint, *(name for name in names if name != model_hint), BUILTIN_PROVIDER]
    return chain[: 1 + settings.provider_max_retries]


def build_prompt(local_text: str) -> str:
    """The user prompt sent with the image: the built-in facts ground the provider."""
    return (
        "Describe this video frame in one to three factual sentences. "
        "An object detector and OCR measured the following; use it, and do not contradict it "
        "without clear visual evidence.\n"
        f"Detected: {local_text}"
    )


class VLMDescriber(Protocol):
    """What :class:`DescribeChain` needs of a client (:class:`store.vlm.VLMClient`)."""

    async def describe(self, provider: ProviderConfig, image: npt.NDArray[np.uint8], prompt: str) -> str: ...


class DescribeChain:
    """The provider chain of one task: the current provider and how many failovers are spent."""

    def __init__(
        self,
        names: list[str],
        providers: Mapping[str, ProviderConfig],
        client: VLMDescriber | None,
        max_retries: int,
    ) -> None:
        if not names:
            raise ValueError("a describe chain needs at least one provider")
        missing = [name for name in names if name != BUILTIN_PROVIDER and name not in providers]
        if missing:
            raise ValueError(f"describe chain names unconfigured provider(s) {missing}")
        if client is None and any(name != BUILTIN_PROVIDER for name in names):
            raise ValueError("a describe chain with external providers needs a VLM client")
        self.names = list(names)
        self.providers = dict(providers)
        self.client = client
        self.max_retries = max_retries
        self._index = 0
        self.failovers = 0

    @classmethod
    def from_settings(cls, model_hint: str | None, settings: Settings, client: VLMDescriber | None) -> DescribeChain:
        providers = {provider.name: provider for provider in providers_from_settings(settings)}
        return cls(resolve_chain(model_hint, settings), providers, client, settings.provider_max_retries)

    @property
    def current(self) -> str:
        """The provider in use (it changes only by failover)."""
        return self.names[self._index]

    async def describe(
        self,
        image: npt.NDArray[np.uint8],
        local_text: str,
        *,
        allow_failover: bool,
        segment: Description | None = None,
    ) -> Description:
        """Describe with the current provider, failing over while allowed.

        The built-in provider returns ``local_text`` as is. On a provider error, when
        ``allow_failover`` (the runner passes "no chunk written yet") and retries are left, the
        chain moves to the next provider for the rest of the task and tries again; otherwise it
        raises :class:`DescribeError`. ``segment``'s frame and time span are carried into the result.
        """
        span: dict[str, Any] = {}
        if segment is not None:
            span = {
                "first_frame": segment.first_frame,
                "last_frame": segment.last_frame,
                "start_ms": segment.start_ms,
                "end_ms": segment.end_ms,
            }
        while True:
            name = self.current
            if name == BUILTIN_PROVIDER:
                return Description(text=local_text, provider=BUILTIN_PROVIDER, **span)
            assert self.client is not None  # checked in __init__
            try:
                text = await self.client.describe(self.providers[name], image, build_prompt(local_text))
            except ProviderError as error:
                can_move = self._index + 1 < len(self.names) and self.failovers < self.max_retries
                if allow_failover and can_move:
                    self._index += 1
                    self.failovers += 1
                    continue
                raise DescribeError(name, error.code, error.message, error.provider_status) from error
            return Description(text=text, provider=name, **span)
