"""The ``describe`` step of one video task: the segment being gathered and the task's provider chain."""

from __future__ import annotations

from typing import Any

import numpy as np

from kernels.detections import Detections
from pipelines.decode_types import DecodedFrame
from pipelines.describe import DescribeChain, SegmentDescriber
from pipelines.step_specs import DescribeParams, StepSpec

__all__ = ["DescribeState"]


class DescribeState:
    """The ``describe`` step of one task: the segment being gathered and the task's provider chain."""

    def __init__(self, step: StepSpec, chain: DescribeChain, labels: dict[int, str] | None) -> None:
        assert isinstance(step.params, DescribeParams)
        self.step = step
        self.segment_frames = step.params.segment_frames
        self.chain = chain
        self.segment = SegmentDescriber(labels=labels)
        self.last_image: np.ndarray | None = None
        self.descriptions: list[dict[str, Any]] = []

    async def add(self, frame: DecodedFrame, tracked: Detections, size: tuple[int, int]) -> dict[str, Any] | None:
        """Add a frame; when it closes a segment, describe the segment (raises :class:`DescribeError`)."""
        width, height = size
        mentioned = tracked[self.step.select(tracked)]
        self.segment.add(frame.frame_index, frame.timestamp_ms, frame.image, mentioned, width=width, height=height)
        self.last_image = frame.image
        if self.segment.frames < self.segment_frames:
            return None
        return await self._describe()

    async def flush(self) -> dict[str, Any] | None:
        """Describe a last, shorter segment (the video ended inside it)."""
        if not self.segment.frames or self.last_image is None:
            return None
        return await self._describe()

    async def _describe(self) -> dict[str, Any]:
        assert self.last_image is not None
        local = self.segment.describe()
        # Failover only while the client has seen nothing of a provider: the chunks before the first
        # description carry the local models' output only, so moving to the next provider then changes
        # nothing already sent. Once a description went out, a provider error is a mid-stream error.
        described = await self.chain.describe(
            self.last_image, local.text, allow_failover=not self.descriptions, segment=local
        )
        self.segment.reset()
        body = described.to_dict()
        self.descriptions.append(body)
        return body
