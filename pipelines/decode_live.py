"""Live sources (RTSP, RTMP, SRT, live HLS, MPEG-TS over HTTP): decode until the source ends, a limit
is reached or the task stops, reconnecting when the source drops.

The frames keep the file decoder's contract (``pipelines/decode.py``): ``frame_index`` counts source
frames (dropped and unsampled ones included) and keeps increasing across reconnects; ``timestamp_ms``
follows the source's timestamps on one monotonic timeline (a reconnect continues one frame after the
last frame seen); ``fps`` sampling is decided on those timestamps, so an HLS segment that arrives in a
burst is sampled by its own clock, not by its arrival. ``total_frames`` is ``None``.

A connection that ends or fails is a drop for RTSP/RTMP/SRT (cameras restart) and is reopened with
exponential backoff (``backoff_s``, doubling, ``attempts`` times; the counter resets once frames flow
again); each success counts in ``stats.reconnects``. Past the last attempt the task fails with
``source_lost``. An HTTP source (HLS, MPEG-TS) that ends has ended (``finish_reason`` ``stop``).
Every wait is cut short by ``stop`` (a cancel), and FFmpeg's own reads give up after
``read_timeout_s`` of silence.
"""

from __future__ import annotations

import functools
import math
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final, Literal
from urllib.parse import urlsplit

import av
import av.error
import numpy as np

from pipelines.decode_types import DecodedFrame, DecodeStats, Sampling, VideoDecodeError, ffmpeg_reason
from store.ssrf_proxy import proxy_for
from visiongrid.settings import Settings

__all__ = ["LIVE_SCHEMES", "LiveDecoder", "LivePolicy", "is_live_url", "live_policy", "scheme_supported"]

#: Schemes that are live whatever the input's ``type`` says (the contract's pinned detail).
LIVE_SCHEMES: Final[frozenset[str]] = frozenset({"rtsp", "rtsps", "rtmp", "rtmps", "srt"})

LiveFinish = Literal["stop", "max_frames", "max_duration"]


def is_live_url(url: str) -> bool:
    return urlsplit(url).scheme.lower() in LIVE_SCHEMES


@functools.cache
def scheme_supported(scheme: str) -> bool:
    """Whether this process's FFmpeg has a protocol for ``scheme``.

    PyAV's wheels are built without libsrt, so ``srt://`` has no protocol there: a submit must say so
    at once rather than accept a task that can only fail. FFmpeg has no public protocol list in PyAV;
    opening a loopback address on port 1 tells "protocol not found" apart from a refused connection
    in under 1 ms (measured for rtsp, rtsps, rtmp, rtmps, srt).
    """
    try:
        av.open(f"{scheme}://127.0.0.1:1/", timeout=0.5).close()
    except av.error.ProtocolNotFoundError:
        return False
    except (av.error.FFmpegError, OSError):
        return True
    return True


@dataclass(frozen=True)
class LivePolicy:
    """How a live source is opened and reopened (all settings; tests shrink them)."""

    attempts: int = 5
    backoff_s: float = 1.0  # 1, 2, 4, 8, 16 s by default
    open_timeout_s: float = 10.0
    read_timeout_s: float = 10.0
    rtsp_transport: Literal["tcp", "udp"] = "tcp"
    http_proxy: str | None = None  # FFmpeg's own http(s) requests go through it (store/ssrf_proxy.py)

    def delay(self, attempt: int) -> float:
        return float(self.backoff_s * 2 ** max(0, attempt - 1))


def live_policy(settings: Settings) -> LivePolicy:
    return LivePolicy(
        attempts=settings.live_reconnect_attempts,
        backoff_s=settings.live_reconnect_backoff_s,
        open_timeout_s=settings.live_open_timeout_s,
        read_timeout_s=settings.live_read_timeout_s,
        rtsp_transport=settings.live_rtsp_transport,
        http_proxy=proxy_for(settings).url,
    )


class LiveDecoder:
    """Iterate sampled RGB frames of a live source, reconnecting on drops; iterate once."""

    def __init__(
        self,
        url: str,
        *,
        sampling: Sampling,
        policy: LivePolicy,
        stop: threading.Event,
        max_frames: int | None = None,
        max_duration_s: float | None = None,
        max_pixels: int | None = None,
    ) -> None:
        self.url = url
        self.sampling = sampling
        self.policy = policy
        self.stop = stop
        self.max_frames = max_frames
        self.max_duration_s = max_duration_s
        self.max_pixels = max_pixels
        self.stats = DecodeStats(total_frames=None)
        self.finish_reason: LiveFinish | None = None
        self.reconnects_on_end = is_live_url(url)  # an HTTP stream that ends has ended
        self._container: av.container.InputContainer | None = None

    # ------------------------------------------------------------------ connections

    def _options(self) -> dict[str, str]:
        scheme = urlsplit(self.url).scheme.lower()
        if scheme.startswith("rtsp"):
            return {"rtsp_transport": self.policy.rtsp_transport, "fflags": "nobuffer"}
        if scheme in ("http", "https"):
            # An HLS playlist names its own segment URLs, which FFmpeg opens itself: keep them on the
            # network protocols (never file:, pipe: or concat:). A live HTTP stream is read once, in
            # order: FFmpeg's duration probe of a TS served with ranges seeks to the end and never
            # came back (0 frames of 75, measured), and ``nobuffer`` throws away the frames read
            # while probing (50 of 75), which for a stream that ends is lost content.
            options = {"seekable": "0", "protocol_whitelist": "http,https,httpproxy,tcp,tls,crypto"}
            if self.policy.http_proxy is not None:  # every playlist, segment and redirect SSRF-checked
                options["http_proxy"] = self.policy.http_proxy
            return options
        if scheme.startswith("rtmp"):
            # FLV announces its streams in its header; FFmpeg's default 5 s stream probe made every
            # RTMP (re)connect take 5.9 s to open against nginx-rtmp, 1.3 s with a 0.5 s probe
            return {"fflags": "nobuffer", "analyzeduration": "500000"}
        return {"fflags": "nobuffer"}

    def _connect(self) -> av.container.InputContainer:
        try:
            container = av.open(
                self.url,
                options=self._options(),
                timeout=(self.policy.open_timeout_s, self.policy.read_timeout_s),
                metadata_errors="ignore",
            )
        except (av.error.FFmpegError, OSError) as exc:
            raise VideoDecodeError("source_unreachable", f"cannot open the live source: {ffmpeg_reason(exc)}") from exc
        if not container.streams.video:
            container.close()
            raise VideoDecodeError("not_a_video", "the live source has no video stream")
        return container

    def _wait(self, seconds: float) -> bool:
        """Sleep unless stopped; False when stopped."""
        return not self.stop.wait(seconds)

    def close(self) -> None:
        container, self._container = self._container, None
        if container is not None:
            container.close()

    # ------------------------------------------------------------------ frames

    def __iter__(self) -> Iterator[DecodedFrame]:
        failures = 0
        connected_once = False
        state = _Timeline()
        while not self.stop.is_set():
            try:
                self._container = self._connect()
            except VideoDecodeError as exc:
                if exc.code == "not_a_video":
                    raise
                failures += 1
                if failures > self.policy.attempts:
                    raise VideoDecodeError(
                        "source_lost", f"the live source stayed unreachable after {self.policy.attempts} attempts"
                    ) from exc
                if not self._wait(self.policy.delay(failures)):
                    return
                continue
            if connected_once:
                self.stats.reconnects += 1
            connected_once = True
            try:
                for frame in self._frames(state):
                    failures = 0  # frames flow again: the next drop starts a fresh backoff
                    yield frame
                    if self.finish_reason is not None:
                        return
            except VideoDecodeError:
                raise
            except (av.error.FFmpegError, OSError):
                pass  # the connection broke mid-stream: a drop
            finally:
                self.close()
            if self.finish_reason is not None or self.stop.is_set():
                return
            if not self.reconnects_on_end:
                self.finish_reason = "stop"
                return
            failures += 1
            if failures > self.policy.attempts:
                raise VideoDecodeError(
                    "source_lost",
                    f"the live source dropped and did not come back after {self.policy.attempts} attempts",
                )
            if not self._wait(self.policy.delay(failures)):
                return
            state.gap()

    def _frames(self, state: _Timeline) -> Iterator[DecodedFrame]:
        assert self._container is not None
        stream = self._container.streams.video[0]
        rate = stream.average_rate or stream.guessed_rate
        fps = float(rate) if rate else 0.0
        if fps and not self.stats.fps:
            self.stats.fps = fps
        for frame in self._container.decode(stream):
            if self.stop.is_set():
                return
            t = state.place(frame.time, fps)
            index = state.next_index()
            if self.max_duration_s is not None and t >= self.max_duration_s:
                self.finish_reason = "max_duration"
                return
            if not self._sampled(t, index, state):
                self.stats.dropped_frames += 1
                continue
            width, height = frame.width, frame.height
            if self.max_pixels is not None and width * height > self.max_pixels:
                raise VideoDecodeError("frame_too_large", f"frame is {width}x{height}, limit {self.max_pixels} pixels")
            self.stats.width, self.stats.height = width, height
            image = np.ascontiguousarray(frame.to_ndarray(format="rgb24"))
            self.stats.decoded_frames += 1
            yield DecodedFrame(
                frame_index=index, timestamp_ms=t * 1000.0, image=image, is_keyframe=bool(frame.key_frame)
            )
            if self.max_frames is not None and self.stats.decoded_frames >= self.max_frames:
                self.finish_reason = "max_frames"
                return

    def _sampled(self, t: float, index: int, state: _Timeline) -> bool:
        mode = self.sampling.mode
        if mode == "keyframe":
            return True  # a live source has no index to skip by; every frame is a candidate
        value = float(self.sampling.value or 1.0)
        if mode == "interval":
            return index % max(1, int(value)) == 0
        if t + min(1e-3, 0.25 / value) >= state.next_sample_t:
            state.next_sample_t = (math.floor(t * value + 1e-6) + 1) / value
            return True
        return False


#: A forward PTS jump this large within one connection is a clock reset, not a pause (seconds).
DISCONTINUITY_S: Final[float] = 10.0


class _Timeline:
    """One monotonic clock and frame count over every connection of a live task.

    A source's clock can also restart *within* a connection: nginx-rtmp keeps its players connected
    when the encoder restarts, and the new encoder's timestamps start again from 0 (measured: before
    this, 70 frames of the restarted encoder were pinned to one instant and sampled away). A backward
    jump, or a forward one over ``DISCONTINUITY_S``, re-anchors the clock one frame after the last.
    """

    def __init__(self) -> None:
        self.index = -1
        self.last_t: float | None = None
        self.frame_step = 0.04
        self.offset: float | None = None  # added to this connection's PTS seconds
        self.next_sample_t = 0.0

    def gap(self) -> None:
        """A reconnect: the next connection's clock is re-anchored after the last frame seen."""
        self.offset = None

    def next_index(self) -> int:
        self.index += 1
        return self.index

    def place(self, pts_s: float | None, fps: float) -> float:
        if fps > 0:
            self.frame_step = 1.0 / fps
        if pts_s is None:
            t = (self.last_t + self.frame_step) if self.last_t is not None else 0.0
        else:
            if self.offset is not None and self.last_t is not None:
                jump = pts_s + self.offset - self.last_t
                if jump < -self.frame_step or jump > DISCONTINUITY_S:
                    self.offset = None  # the source's clock restarted within one connection
            if self.offset is None:  # first frame of a connection, or after a discontinuity
                start = (self.last_t + self.frame_step) if self.last_t is not None else 0.0
                self.offset = start - pts_s
            t = pts_s + self.offset
        if self.last_t is not None and t <= self.last_t:
            t = self.last_t + 1e-3  # never backwards, never twice
        self.last_t = t
        return t
