"""A task submitted with ``output``: its worker renders the annotated MP4 and per-track previews into
the project's storage; the MP4 has one frame per chunk with each chunk's boxes drawn where its ROI
says; the previews are real images; deleting the task deletes them."""

from __future__ import annotations

import io

import av
import httpx
import numpy as np
from PIL import Image

from kernels.draw import LINE, colour_of
from tests.e2e.conftest import Service
from visiongrid.client import Client


def test_the_annotated_video_and_previews_match_the_chunks(service: Service) -> None:
    with Client(service.base_url, service.key_a) as client:
        created = client.video.process(
            {
                "input": [
                    {
                        "type": "video_url",
                        "url": f"{service.media_url}/walk.mp4",
                        "sampling": {"mode": "fps", "value": 10},
                    }
                ],
                "steps": [{"model": "detect", "parameters": {"classes": ["person"]}}],
                "output": {"annotated_video": True, "track_previews": True},
            }
        )
        chunks = [chunk for chunk in client.video.stream(created.id) if chunk.finish_reason is None]
        result = client.video.results(created.id)
        annotated = client.http.get(f"/v1/video/tasks/{created.id}/annotated").raise_for_status().json()
        mp4 = httpx.get(annotated["url"]).raise_for_status()
        assert mp4.headers["content-type"] == "video/mp4"
        with av.open(io.BytesIO(mp4.content)) as container:
            frames = [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]
        assert annotated["frames"] == len(frames) == len(chunks) > 5
        checked = 0
        for chunk, frame in zip(chunks, frames, strict=True):
            for target in chunk.delta.results[0].targets:
                roi = target.roi
                if roi.height < 60 or roi.width < 8:
                    continue
                colour = np.array(colour_of(target.track_id))
                columns = frame[roi.top + 25 : roi.top + roi.height - 5, roi.left : roi.left + LINE].astype(float)
                error = np.abs(columns.mean(axis=0) - colour).max(axis=1).min()  # the line's truest column (4:2:0)
                assert error < 40, (chunk.stream_info, columns.mean(axis=0))
                checked += 1
        assert checked > 5, "boxes were compared on several frames"
        (track,) = result.tracks
        assert result.annotated_video is not None and result.annotated_video.frames == len(frames)
        assert track.thumbnail_url is not None and track.preview_url is not None
        thumbnail = Image.open(io.BytesIO(httpx.get(track.thumbnail_url).raise_for_status().content))
        preview = Image.open(io.BytesIO(httpx.get(track.preview_url).raise_for_status().content))
        assert thumbnail.format == "JPEG" and preview.format == "GIF" and preview.n_frames > 1
        assert len(client.storage.files(f"outputs/{created.id}").data) == 3
        client.video.delete(created.id)
        assert client.storage.files(f"outputs/{created.id}").data == [], "deleted with the task"
