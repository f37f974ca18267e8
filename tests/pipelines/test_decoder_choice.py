"""Per-task decoder choice: NVDEC for H.264/HEVC where a GPU is visible, PyAV on CPU otherwise, and a
GPU that cannot start falls back to CPU for that task with the reason in its usage."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from models.runtime.backend import gpu_visible
from pipelines.decode import VideoDecoder
from pipelines.decode_types import Sampling, VideoDecodeError
from pipelines.decoder_choice import DecoderChoice, choose_decoder, open_video_decoder
from tests.clips import write_walking_person_clip


@pytest.mark.parametrize(
    ("preference", "codec", "gpu", "expected"),
    [
        ("auto", "h264", True, DecoderChoice("nvdec")),
        ("auto", "hevc", True, DecoderChoice("nvdec")),
        ("nvdec", "h264", True, DecoderChoice("nvdec")),
        ("auto", "h264", False, DecoderChoice("pyav")),  # a CPU machine: nothing to explain
        ("nvdec", "h264", False, DecoderChoice("pyav", "no GPU visible: CPU decode")),
        ("pyav", "h264", True, DecoderChoice("pyav")),
    ],
)
def test_choice_by_preference_codec_and_gpu(preference: str, codec: str, gpu: bool, expected: DecoderChoice) -> None:
    assert choose_decoder(preference, codec=codec, gpu=gpu) == expected  # type: ignore[arg-type]


def test_a_codec_nvdec_does_not_serve_is_decoded_on_cpu_and_says_so() -> None:
    choice = choose_decoder("auto", codec="msmpeg4v3", gpu=True)
    assert choice.name == "pyav" and "msmpeg4v3" in (choice.note or "")
    assert choice.as_usage() == {"decoder": "pyav", "decoder_note": choice.note}
    assert DecoderChoice("nvdec").as_usage() == {"decoder": "nvdec"}


def _frames(decoder: VideoDecoder) -> list[np.ndarray]:
    with decoder:
        return [frame.image for frame in decoder]


@pytest.mark.skipif(gpu_visible(), reason="checks the fallback where NVDEC cannot start (no GPU here)")
def test_where_nvdec_cannot_start_the_task_decodes_on_cpu_with_the_same_frames(media_dir: Path, tmp_path: Path) -> None:
    clip = write_walking_person_clip(media_dir, tmp_path / "walk.mp4", frames=12)
    decoder, choice = open_video_decoder(clip, "auto", gpu=True, sampling=Sampling(mode="interval", value=2))
    assert choice.name == "pyav" and choice.note is not None and "NVDEC unavailable" in choice.note
    reference = _frames(VideoDecoder(clip, sampling=Sampling(mode="interval", value=2)))
    got = _frames(decoder)
    assert len(got) == len(reference) == 6
    assert all(np.array_equal(a, b) for a, b in zip(got, reference, strict=True))


def test_an_msmpeg4_clip_never_tries_nvdec(media_dir: Path) -> None:
    decoder, choice = open_video_decoder(media_dir / "vtest.avi", "auto", gpu=True, max_frames=2)
    with decoder:
        assert decoder.hwaccel is None and len(list(decoder)) == 2
    assert choice.name == "pyav" and "codec msmpeg4" in (choice.note or "")


def test_bad_input_is_still_its_own_error_with_a_gpu_asked_for(tmp_path: Path) -> None:
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"\x00not a video at all" * 100)
    with pytest.raises(VideoDecodeError) as raised:
        open_video_decoder(junk, "nvdec", gpu=True)
    assert raised.value.code == "not_a_video"


@pytest.mark.skipif(not gpu_visible(), reason="no NVIDIA GPU visible: NVDEC runs only on the GPU machine")
def test_nvdec_frames_match_cpu_frames(media_dir: Path, tmp_path: Path) -> None:
    clip = write_walking_person_clip(media_dir, tmp_path / "walk.mp4", frames=12)
    decoder, choice = open_video_decoder(clip, "nvdec")
    assert choice.name == "nvdec", choice.note
    gpu_frames, cpu_frames = _frames(decoder), _frames(VideoDecoder(clip))
    assert len(gpu_frames) == len(cpu_frames)
    for a, b in zip(gpu_frames, cpu_frames, strict=True):  # colour conversion may round differently
        assert np.abs(a.astype(int) - b.astype(int)).mean() < 2.0
