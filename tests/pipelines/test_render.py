"""The renderer: the MP4 has one frame per chunk with the chunk's times and its boxes where the
chunk's ROI says; thumbnails are the best crop and previews a short GIF; nothing is left behind."""

from __future__ import annotations

import io

import av
import numpy as np
from PIL import Image

from kernels.detections import Detections
from kernels.draw import LINE, colour_of
from pipelines.chunks import rois
from pipelines.render import PREVIEW_FRAMES, OutputOptions, Renderer


def _frame(index: int) -> tuple[np.ndarray, Detections]:
    image = np.full((241, 321, 3), 60, np.uint8)  # odd sizes: the encoder pads, the pixels stay put
    image[100:200, 10 + 3 * index : 60 + 3 * index] = 200  # a bright object moving right
    image[100 + index : 110 + index, 10 + 3 * index : 60 + 3 * index] = 120  # a band moving down it
    tracked = Detections(
        xyxy=np.array([[10 + 3 * index, 100, 60 + 3 * index, 200], [200, 20, 260, 90]], np.float32),
        confidence=np.array([0.5 + index / 100, 0.8], np.float32),
        class_id=np.array([0, 2]),
        track_id=np.array([4, -1]),
    )
    return image, tracked


def test_the_annotated_video_matches_the_chunks_frame_by_frame() -> None:
    renderer = Renderer(OutputOptions(annotated_video=True), None)
    frames = [_frame(index) for index in range(30)]
    for index, (image, tracked) in enumerate(frames):
        renderer.add(image, index * 200.0, tracked)
    made = renderer.annotated_video()
    assert made is not None
    path, count = made
    with av.open(str(path)) as container:
        decoded = list(container.decode(video=0))
    path.unlink()
    assert count == len(decoded) == 30
    assert [round(frame.time * 1000) for frame in decoded] == [index * 200 for index in range(30)]
    colour = np.array(colour_of(4), dtype=float)
    for n in (0, 14, 29):
        pixels = decoded[n].to_ndarray(format="rgb24")[:241, :321].astype(float)
        roi = rois(frames[n][1].xyxy, 321, 241)[0]
        left, top, width = roi["left"], roi["top"], roi["width"]
        edge = pixels[top + 30 : top + 70, left : left + LINE].mean(axis=0)  # the box's left side, below the label
        assert np.abs(edge - colour).max(axis=1).min() < 40, (n, edge, colour)
        assert np.abs(pixels[top + 80, left + width // 2] - 200).max() < 25, "the object itself is not painted"


def test_thumbnails_are_the_best_crop_and_previews_a_short_gif() -> None:
    renderer = Renderer(OutputOptions(track_previews=True), None)
    for index in range(40):
        image, tracked = _frame(index)
        renderer.add(image, index * 200.0, tracked)
    media = renderer.track_media()
    assert list(media) == [4], "the unconfirmed target (-1) has no preview"
    thumbnail, preview = media[4]
    best = Image.open(io.BytesIO(thumbnail))
    assert best.format == "JPEG" and best.size == (50, 100)
    gif = Image.open(io.BytesIO(preview))
    assert gif.format == "GIF" and 2 <= gif.n_frames <= PREVIEW_FRAMES and gif.size == (128, 128)
    assert renderer.annotated_video() is None


def test_a_discarded_render_leaves_no_file() -> None:
    renderer = Renderer(OutputOptions(annotated_video=True), None)
    image, tracked = _frame(0)
    renderer.add(image, 0.0, tracked)
    assert renderer.video is not None
    path = renderer.video.path
    assert path.exists()
    renderer.discard()
    renderer.discard()
    assert not path.exists()
