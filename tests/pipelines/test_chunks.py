"""Chunk JSON and SSE bytes: the wire format clients parse and reconnect against."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from sse_starlette import ServerSentEvent

from kernels.detections import Detections
from pipelines.chunks import DONE_DATA, frame_chunk, result_body, sse_event, terminal_chunk
from pipelines.decode import DecodeStats
from pipelines.tracks import TrackSummary

PERSON, CAR = 0, 2
EVENT = re.compile(rb"id: (\d+)\ndata: ([^\n]*)\n\n")


def parse_events(blob: bytes) -> list[tuple[int, int, str]]:
    """(start offset, id, data) for each event; fails unless the events tile ``blob`` exactly."""
    events, position = [], 0
    while position < len(blob):
        match = EVENT.match(blob, position)
        assert match is not None, f"malformed SSE at byte {position}: {blob[position : position + 60]!r}"
        events.append((position, int(match.group(1)), match.group(2).decode()))
        position = match.end()
    return events


def stats(**overrides: float) -> DecodeStats:
    base = DecodeStats(decoded_frames=43, dropped_frames=0, total_frames=150, fps=25.0, width=640, height=480)
    for name, value in overrides.items():
        setattr(base, name, value)
    return base


def test_sse_event_id_is_its_own_end_offset_and_matches_sse_starlette() -> None:
    event = sse_event('{"a":1}', 100)
    end = int(event.split(b"\n", 1)[0].removeprefix(b"id: "))
    assert end == 100 + len(event)
    assert event == ServerSentEvent(data='{"a":1}', id=str(end), sep="\n").encode()
    assert event.endswith(b'\ndata: {"a":1}\n\n')


@pytest.mark.parametrize("boundary", [10, 100, 1000, 10_000, 1_000_000])
def test_sse_event_fixed_point_across_digit_boundaries(boundary: int) -> None:
    """Every length and start offset near a power of ten: the id always equals start + length."""
    for data_len in range(0, 40):
        data = "x" * data_len
        for start in range(max(0, boundary - 60), boundary + 5):
            event = sse_event(data, start)
            ((_, end, body),) = parse_events(event)
            assert body == data
            assert end == start + len(event), (start, data_len, event)


def test_sse_event_tiny_events_cross_9_to_10_and_99_to_100() -> None:
    # "id: N\ndata: \n\n" is 13 bytes plus N's digits.
    assert sse_event("", 0) == b"id: 15\ndata: \n\n"  # 13 + 2 digits
    assert sse_event("", 84) == b"id: 99\ndata: \n\n"  # 84 + 15 = 99, still 2 digits
    # 85 + 15 would be 100, which has 3 digits -> the event is 16 bytes long and ends at 101
    assert sse_event("", 85) == b"id: 101\ndata: \n\n"
    assert sse_event("x" * 983, 0) == b"id: 999\ndata: " + b"x" * 983 + b"\n\n"
    # one more byte would end at 1000, a 4-digit id: the event grows to 1001 bytes (no event ends at 1000)
    assert sse_event("x" * 984, 0) == b"id: 1001\ndata: " + b"x" * 984 + b"\n\n"


def test_consecutive_events_tile_and_ids_are_offsets() -> None:
    blob = b""
    for index in range(200):
        blob += sse_event("y" * (index % 17), len(blob))
    blob += sse_event(DONE_DATA, len(blob))
    events = parse_events(blob)
    assert len(events) == 201
    for (start, end, _), following in zip(events, [*events[1:], (len(blob), 0, "")], strict=True):
        assert end == following[0]
        assert blob[start:end].startswith(b"id: ")
    assert events[-1][2] == "[DONE]" and events[-1][1] == len(blob)


def test_sse_event_refuses_multiline_data_and_negative_offsets() -> None:
    with pytest.raises(ValueError, match="single line"):
        sse_event("a\nb", 0)
    with pytest.raises(ValueError):
        sse_event("a", -1)


def detections() -> Detections:
    return Detections(
        xyxy=np.array([[10.4, 20.6, 70.5, 200.2], [-5.0, 470.0, 3.0, 490.0], [639.7, 10.0, 660.0, 10.2]], np.float32),
        confidence=np.array([0.912345, 0.5, 0.33333], np.float32),
        class_id=np.array([PERSON, PERSON, CAR]),
        track_id=np.array([1, 2, 3]),
    )


def test_frame_chunk_fields_follow_the_contract() -> None:
    text = frame_chunk(
        "vt_1",
        frame_index=42,
        timestamp_ms=1680.0,
        stats=stats(),
        elapsed_ms=1720,
        detections=detections(),
        labels={PERSON: "pedestrian"},
        model="qwen-vl-max",
        first=True,
    )
    assert "\n" not in text and ", " not in text and '": ' not in text  # compact
    chunk = json.loads(text)
    assert list(chunk) == ["id", "object", "model", "stream_info", "delta", "finish_reason"]
    assert chunk["id"] == "vt_1" and chunk["object"] == "mm.pipeline.chunk" and chunk["model"] == "qwen-vl-max"
    assert chunk["stream_info"] == {
        "frame_index": 42,
        "total_frames": 150,
        "decoded_frames": 43,
        "dropped_frames": 0,
        "fps": 25.0,
        "elapsed_ms": 1720,
        "timestamp_ms": 1680.0,
        "reconnects": 0,  # a file: never reopened, and no live lag
        "lag_ms": None,
        "width": 640,  # the frame the ROIs are in
        "height": 480,
    }
    assert chunk["finish_reason"] is None
    (result,) = chunk["delta"]["results"]
    assert result["index"] == 0
    first, second, third = result["targets"]
    assert first == {
        "track_id": 1,
        "class": "pedestrian",  # the request's word, not "person"
        "confidence": 0.9123,
        "roi": {"left": 10, "top": 21, "width": 60, "height": 179},
    }
    assert second["roi"] == {"left": 0, "top": 470, "width": 3, "height": 10}  # clipped to the 640x480 frame
    assert third["class"] == "car"  # not asked for by alias: the COCO name
    assert third["roi"] == {"left": 639, "top": 10, "width": 1, "height": 1}  # never below 1x1
    for target in result["targets"]:
        assert all(isinstance(value, int) for value in target["roi"].values())


def test_model_only_in_the_first_chunk_and_empty_frames_still_chunk() -> None:
    text = frame_chunk(
        "vt_1",
        frame_index=43,
        timestamp_ms=1720.0,
        stats=stats(),
        elapsed_ms=1800,
        detections=Detections.empty(),
        labels=None,
        model="qwen-vl-max",
        first=False,
    )
    chunk = json.loads(text)
    assert "model" not in chunk
    assert chunk["delta"] == {"results": [{"index": 0, "targets": []}]}


def test_terminal_chunk_stop_and_error() -> None:
    usage = {"processed_frames": 150, "processing_time_ms": 6200}
    chunk = json.loads(
        terminal_chunk(
            "vt_1", finish_reason="stop", usage=usage, stats=stats(), elapsed_ms=6200, frame_index=149,
            timestamp_ms=5960.0,
        )
    )  # fmt: skip
    assert chunk["finish_reason"] == "stop" and chunk["usage"] == usage
    assert chunk["delta"] == {"results": []} and "error" not in chunk and "model" not in chunk
    assert chunk["stream_info"]["frame_index"] == 149 and chunk["stream_info"]["total_frames"] == 150

    failed = json.loads(
        terminal_chunk(
            "vt_2",
            finish_reason="error",
            usage={"processed_frames": 0, "processing_time_ms": 3},
            stats=None,
            elapsed_ms=3,
            error={"code": "not_a_video", "message": "not a recognised video file"},
            model="m",
            first=True,
        )
    )
    assert failed["model"] == "m"
    assert failed["error"] == {"code": "not_a_video", "message": "not a recognised video file"}
    assert failed["stream_info"] == {
        "frame_index": None,
        "total_frames": None,
        "decoded_frames": 0,
        "dropped_frames": 0,
        "fps": 0.0,
        "elapsed_ms": 3,
        "timestamp_ms": None,
        "reconnects": 0,
        "lag_ms": None,
        "width": None,  # nothing decoded: unknown, never invented
        "height": None,
    }


def test_result_body() -> None:
    tracks = [
        TrackSummary(1, PERSON, 0, 149, 0.0, 5960.0, 30, 0.93456),
        TrackSummary(2, CAR, 3, 7, 120.0, 280.0, 5, 0.5),
    ]
    body = result_body(
        "vt_1",
        model="qwen-vl-max",
        usage={"processed_frames": 150, "processing_time_ms": 6200},
        tracks=tracks,
        labels={PERSON: "pedestrian"},
    )
    assert body["object"] == "mm.pipeline.result" and body["model"] == "qwen-vl-max"
    assert body["usage"] == {"processed_frames": 150, "processing_time_ms": 6200}
    assert body["tracks"][0] == {
        "track_id": 1,
        "class": "pedestrian",
        "first_frame": 0,
        "last_frame": 149,
        "first_timestamp_ms": 0.0,
        "last_timestamp_ms": 5960.0,
        "frames_seen": 30,
        "best_confidence": 0.9346,
    }
    assert body["tracks"][1]["class"] == "car"
    json.dumps(body, allow_nan=False)  # storable as JSON
