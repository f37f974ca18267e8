"""The two ways a ``describe`` step fails: a request naming no provider, or every allowed provider failing."""

from __future__ import annotations

from collections.abc import Iterable

from contract.errors import ErrorCode, PlanError, VisionGridError

__all__ = ["DescribeError", "UnknownProviderError"]


class UnknownProviderError(PlanError):
    """A request's ``model`` names no configured provider: a 400 ``invalid_request``, field ``model``."""

    def __init__(self, hint: str, known: Iterable[str]) -> None:
        self.hint = hint
        self.known = sorted(known)
        super().__init__("model", f"unknown describe model {hint!r}; known: {', '.join(self.known)}")


class DescribeError(VisionGridError):
    """The describe step failed for good: the provider in use failed and no failover is allowed or left.

    A 502 ``describe_failed``. ``message`` is what a client of the synchronous routes reads; ``str()`` is
    the short form the task runner puts into a failed task's error (``describe (p) failed: <str>``).
    What the provider itself reported stays on the error: ``provider``, ``provider_code`` (the
    :class:`store.vlm.ProviderError` kind), ``provider_message`` and ``provider_status`` (its HTTP
    status, if it answered one).
    """

    def __init__(self, provider: str, code: str, message: str, status: int | None = None) -> None:
        self.provider = provider
        self.provider_code = code
        self.provider_message = message
        self.provider_status = status
        super().__init__(
            ErrorCode.DESCRIBE_FAILED, f"every describe provider failed; last {provider}: {self._summary()}"
        )

    def _summary(self) -> str:
        return f"describe provider {self.provider!r} failed ({self.provider_code}): {self.provider_message}"

    def __str__(self) -> str:
        return self._summary()
