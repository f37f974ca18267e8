"""decode → detect → track on real footage: ids are stable, summaries agree with the frames."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest

from kernels.detections import Detections
from models.coco import UnknownClassError
from models.runtime.detector import Detector
from pipelines.bare_loop import UnknownStepError, analyse_video
from pipelines.decode import DecodedFrame, Sampling
from tests.clips import write_walking_person_clip
from visiongrid.settings import Settings

PERSON = 0


@pytest.fixture(scope="module")
def walking_person_clip(media_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real person walking right, 12 px per frame, 20 frames of 640x480 H.264 at 10 fps."""
    return write_walking_person_clip(media_dir, tmp_path_factory.mktemp("clips") / "walk.mp4")


def test_a_walking_person_keeps_one_track_id(walking_person_clip: Path, detector: Detector) -> None:
    seen: list[tuple[int, Detections]] = []
    result = analyse_video(
        walking_person_clip,
        sampling=Sampling(mode="interval", value=1),
        classes=["pedestrian"],
        detector=detector,
        on_frame=lambda frame, found: seen.append((frame.frame_index, found)),
    )
    assert result.processed_frames == 20 and result.finish_reason == "stop"
    assert [index for index, _ in seen] == list(range(20))
    ids = {int(track_id) for _, found in seen for track_id in found.track_id}
    assert ids == {1}, f"expected one stable track, got {ids}"
    (track,) = result.tracks
    assert track.class_id == PERSON and track.first_frame == 0 and track.last_frame == 19
    assert track.frames_seen == 20
    assert track.last_timestamp_ms == pytest.approx(1900, abs=1)
    # the box follows the person: 12 px per frame to the right
    centres = [float(found.xyxy[0, [0, 2]].mean()) for _, found in seen]
    assert np.polyfit(np.arange(20), centres, 1)[0] == pytest.approx(12, abs=2)
    assert result.requested_classes == {PERSON: "pedestrian"}


def test_real_pedestrian_clip_summaries_agree_with_frames(media_dir: Path, detector: Detector) -> None:
    frames: list[DecodedFrame] = []
    per_track: dict[int, list[tuple[int, float]]] = defaultdict(list)

    def record(frame: DecodedFrame, found: Detections) -> None:
        frames.append(frame)
        assert len(set(found.track_id.tolist())) == len(found), "a track id appears twice in one frame"
        for track_id, confidence in zip(found.track_id.tolist(), found.confidence.tolist(), strict=True):
            per_track[track_id].append((frame.frame_index, confidence))

    result = analyse_video(
        media_dir / "vtest.avi",
        sampling=Sampling(mode="fps", value=5),
        max_frames=30,
        classes=["person"],
        detector=detector,
        on_frame=record,
    )
    assert result.finish_reason == "max_frames" and result.processed_frames == 30
    assert [f.frame_index for f in frames] == list(range(0, 60, 2))  # 10 fps source sampled at 5 fps
    assert result.stats.total_frames == 795 and result.stats.fps == pytest.approx(10)
    assert len(result.tracks) >= 3, "the clip has several people walking"
    assert max(track.frames_seen for track in result.tracks) >= 20, "someone is tracked through most frames"
    for track in result.tracks:
        observed = per_track[track.track_id]
        assert track.frames_seen == len(observed)
        assert (track.first_frame, track.last_frame) == (observed[0][0], observed[-1][0])
        assert track.best_confidence == pytest.approx(max(c for _, c in observed), abs=1e-6)
        assert track.class_id == PERSON


def test_min_confidence_raises_the_bar_for_tracks(media_dir: Path, detector: Detector) -> None:
    loose = analyse_video(media_dir / "vtest.avi", max_frames=8, detector=detector, min_confidence=0.3)
    strict = analyse_video(media_dir / "vtest.avi", max_frames=8, detector=detector, min_confidence=0.7)
    assert len(strict.tracks) < len(loose.tracks)


def test_unknown_step_and_class_are_refused_before_decoding(tmp_path: Path) -> None:
    not_a_file = tmp_path / "missing.mp4"
    with pytest.raises(UnknownStepError, match="known steps"):
        analyse_video(not_a_file, steps=["detect", "levitate"], settings=Settings())
    with pytest.raises(UnknownClassError, match="unicorn"):
        analyse_video(not_a_file, classes=["unicorn"], settings=Settings())
