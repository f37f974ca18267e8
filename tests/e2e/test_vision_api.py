"""Vision end to end over HTTP on the real cluster: synchronous image endpoints, the image batch, the
model list, and video tasks running every step with ``when`` filters, batching and provider failover."""

from __future__ import annotations

import base64
import io
import re
import struct
import time
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from tests.e2e.conftest import Providers, Service
from tests.e2e.test_storage_api import upload
from tests.e2e.test_video_api import data_events, read_stream, wait_terminal

DIGEST = re.compile(r"^dim=(\d+);norm=(\d+\.\d{4})$")
FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def post(service: Service, path: str, body: dict[str, Any], key: str | None = None) -> Any:
    with service.client(key) as client:
        return client.post(path, json=body)


def rendered_text_png(lines: list[str]) -> bytes:
    image = Image.new("RGB", (520, 70 * len(lines) + 20), "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.truetype(FONT, 40)
    for row, line in enumerate(lines):
        draw.text((20, 15 + 70 * row), line, fill="black", font=font)
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def png_claiming(width: int, height: int) -> bytes:
    """A tiny, well-formed PNG header that claims a huge image (its pixels are never sent)."""

    def chunk(kind: bytes, payload: bytes) -> bytes:
        body = kind + payload
        return struct.pack(">I", len(payload)) + body + struct.pack(">I", zlib.crc32(body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\x00" * 64)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


# --------------------------------------------------------------------------------------------- sync


def test_detect_finds_the_dog_the_bicycle_and_the_vehicle(service: Service) -> None:
    response = post(service, "/v1/vision/detect", {"image": {"url": f"{service.media_url}/dog.jpg"}})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["object"] == "vision.detect" and body["model"] == "centernet"
    assert body["image"] == {"width": 768, "height": 576}
    classes = {target["class"] for target in body["targets"]}
    assert {"dog", "bicycle"} <= classes and classes & {"truck", "car"}
    for target in body["targets"]:
        assert set(target) == {"track_id", "class", "confidence", "roi"}  # the shape of a video chunk's target
        assert target["track_id"] == -1 and 0.3 <= target["confidence"] <= 1
        roi = target["roi"]
        assert roi["left"] + roi["width"] <= 768 and roi["top"] + roi["height"] <= 576
    dog = next(target for target in body["targets"] if target["class"] == "dog")
    assert dog["roi"]["left"] < 768 / 2, "the dog sits in the left half of dog.jpg"


def test_detect_by_alias_from_base64_and_from_storage(service: Service, media_dir: Path) -> None:
    data = (media_dir / "dog.jpg").read_bytes()
    by_alias = post(service, "/v1/vision/detect", {"image": {"base64": b64(data)}, "classes": ["vehicle"]})
    assert by_alias.status_code == 200, by_alias.text
    targets = by_alias.json()["targets"]
    assert targets and {target["class"] for target in targets} == {"vehicle"}
    upload(service, "photos/dog.jpg", data)
    stored = post(service, "/v1/vision/detect", {"image": {"path": "photos/dog.jpg"}, "min_confidence": 0.5})
    assert stored.status_code == 200, stored.text
    assert all(target["confidence"] >= 0.5 for target in stored.json()["targets"])
    assert "bicycle" in {target["class"] for target in stored.json()["targets"]}
    other_project = post(service, "/v1/vision/detect", {"image": {"path": "photos/dog.jpg"}}, service.key_b)
    assert other_project.status_code in (400, 404) and other_project.json()["error"]["field"] == "image.path"


def test_ocr_reads_rendered_text_exactly(service: Service) -> None:
    png = rendered_text_png(["VISIONGRID 2026", "Gate 7B"])
    response = post(service, "/v1/vision/ocr", {"image": {"base64": b64(png)}})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["object"] == "vision.ocr" and body["text"] == "VISIONGRID 2026\nGate 7B"
    assert [target["class"] for target in body["targets"]] == ["text", "text"]
    first, second = body["targets"]
    assert first["roi"]["top"] < second["roi"]["top"] and first["text_confidence"] > 0.8


def test_describe_builtin_says_what_the_models_see(service: Service) -> None:
    response = post(service, "/v1/vision/describe", {"image": {"url": f"{service.media_url}/dog.jpg"}})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["description"]["provider"] == "visiongrid-describe" == body["model"]
    text = body["description"]["text"].lower()
    assert "dog" in text and "bicycle" in text
    astronaut = io.BytesIO()
    pytest.importorskip("skimage")
    from skimage import data as skimage_data

    Image.fromarray(skimage_data.astronaut()).save(astronaut, "JPEG")
    faces = post(service, "/v1/vision/describe", {"image": {"base64": b64(astronaut.getvalue())}}).json()
    assert "face" in faces["description"]["text"].lower()
    assert any(target["class"] == "face" and "descriptor_digest" in target for target in faces["targets"])


def test_describe_fails_over_from_a_failing_provider(service: Service, providers: Providers) -> None:
    before = len(providers.flaky.received)
    response = post(
        service, "/v1/vision/describe", {"image": {"url": f"{service.media_url}/dog.jpg"}, "model": "flaky-vlm"}
    )
    assert response.status_code == 200, response.text
    description = response.json()["description"]
    assert description["provider"] == "standin-vlm"
    assert description["text"].startswith("Stand-in scene. [model=standin-model image=768x576]")
    assert len(providers.flaky.received) == before + 1, "the failing provider was tried first"
    prompt = providers.working.received[-1].prompt
    assert "dog" in prompt.lower(), "the provider is grounded with what the models saw"


@pytest.mark.parametrize(
    ("path", "body", "status", "code", "field"),
    [
        (
            "/v1/vision/detect",
            {"image": {"base64": b64(b"definitely not an image")}},
            400,
            "not_an_image",
            "image.base64",
        ),
        (
            "/v1/vision/detect",
            {"image": {"base64": b64(png_claiming(100_000, 100_000))}},
            413,
            "image_too_large",
            "image.base64",
        ),
        ("/v1/vision/detect", {"image": {"base64": "@@@"}}, 400, "invalid_base64", "image.base64"),
        ("/v1/vision/detect", {"image": {"url": "http://x/a.jpg", "base64": "AAAA"}}, 400, "invalid_request", "image"),
        ("/v1/vision/detect", {"image": {}}, 400, "invalid_request", "image"),
        (
            "/v1/vision/detect",
            {"image": {"url": "http://127.0.0.1:9/a.jpg"}, "model": "yolov99"},
            400,
            "invalid_request",
            "model",
        ),
        (
            "/v1/vision/detect",
            {"image": {"url": "http://127.0.0.1:9/a.jpg"}, "classes": ["unicorn"]},
            400,
            "invalid_request",
            "classes",
        ),
        (
            "/v1/vision/detect",
            {"image": {"url": "http://127.0.0.1:9/a.jpg"}, "model": "faceres"},
            400,
            "invalid_request",
            "model",
        ),
        (
            "/v1/vision/describe",
            {"image": {"url": "http://127.0.0.1:9/a.jpg"}, "model": "gpt-99"},
            400,
            "invalid_request",
            "model",
        ),
        (
            "/v1/vision/ocr",
            {"image": {"url": "http://127.0.0.1:9/a.jpg"}, "min_confidence": 2},
            400,
            "invalid_request",
            "min_confidence",
        ),
    ],
)
def test_bad_images_and_parameters_name_the_field(
    service: Service, path: str, body: dict[str, Any], status: int, code: str, field: str
) -> None:
    response = post(service, path, body)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code and error["field"] == field


def test_corrupt_and_empty_images_are_400(service: Service, media_dir: Path) -> None:
    jpeg = (media_dir / "dog.jpg").read_bytes()
    truncated = post(service, "/v1/vision/detect", {"image": {"base64": b64(jpeg[: len(jpeg) // 3])}})
    assert truncated.status_code == 400 and truncated.json()["error"]["code"] == "corrupt_image"
    zero = post(service, "/v1/vision/detect", {"image": {"base64": b64(png_claiming(0, 0))}})
    assert zero.status_code == 400 and zero.json()["error"]["code"] in ("empty_image", "corrupt_image", "not_an_image")


def test_models_lists_every_step_model_and_provider(service: Service) -> None:
    with service.client() as client:
        body = client.get("/v1/vision/models").json()
    models = {model["id"]: model for model in body["data"]}
    assert {"centernet", "appearance", "blazeface", "faceres", "ppocr", "visiongrid-describe", "standin-vlm"} <= set(
        models
    )
    assert models["centernet"]["step"] == "detect" and models["appearance"]["dim"] == 960
    assert models["faceres"]["dim"] == 1024 and models["ppocr"]["step"] == "ocr"
    with service.client("not-a-key") as client:
        assert client.get("/v1/vision/models").status_code == 401


# --------------------------------------------------------------------------------------------- batch


def wait_batch(service: Service, location: str, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    with service.client() as client:
        while time.monotonic() < deadline:
            body: dict[str, Any] = client.get(location).json()
            if body["status"] in ("finished", "failed", "cancelled"):
                return body
            time.sleep(0.1)
    raise AssertionError(f"batch {location} did not finish")


def test_image_batch_reports_each_item(service: Service, media_dir: Path) -> None:
    images = [
        {"data_base64": b64((media_dir / "dog.jpg").read_bytes()), "id": "dog"},
        {"data_base64": b64(b"not an image at all"), "id": "junk"},
        {"data_base64": b64((media_dir / "horses.jpg").read_bytes()), "id": "horses"},
    ]
    response = post(service, "/v1/vision/batch", {"images": images, "steps": [{"model": "detect"}]})
    assert response.status_code == 202, response.text
    created = response.json()
    assert (
        created["job_id"].startswith("ib_") and response.headers["Location"] == f"/v1/vision/batch/{created['job_id']}"
    )
    body = wait_batch(service, response.headers["Location"])
    assert body["status"] == "finished" and body["processed_images"] == 3
    dog, junk, horses = body["items"]
    assert (dog["id"], dog["status"], dog["image"]) == ("dog", "finished", {"width": 768, "height": 576})
    assert {"dog", "bicycle"} <= {target["class"] for target in dog["targets"]}
    assert junk["status"] == "failed" and junk["error"]["code"] == "not_an_image"
    assert horses["status"] == "finished" and any(target["class"] == "horse" for target in horses["targets"])
    with service.client() as client:
        assert client.get(f"/v1/video/tasks/{created['job_id']}").status_code == 404, "a batch is not a video task"
        assert all(task["id"].startswith("vt_") for task in client.get("/v1/video/tasks").json()["data"])
    with service.client(service.key_b) as client:
        assert client.get(response.headers["Location"]).status_code == 404, "another project's batch is not found"
        assert client.get("/v1/vision/batch/vt_nothing").status_code == 404


def test_batch_refuses_data_uris_and_bad_steps(service: Service) -> None:
    data_uri = post(service, "/v1/vision/batch", {"images": [{"data_base64": "data:image/png;base64,AAAA"}]})
    assert data_uri.status_code == 400 and data_uri.json()["error"]["field"] == "images[0].data_base64"
    bad_when = post(
        service,
        "/v1/vision/batch",
        {"images": [{"data_base64": "AAAA"}], "steps": [{"model": "detect"}, {"model": "ocr", "when": {"colour": 1}}]},
    )
    assert bad_when.status_code == 400 and bad_when.json()["error"]["field"] == "steps[1].when.colour"


# --------------------------------------------------------------------------------------------- video


def video(service: Service, url: str, steps: list[dict[str, Any]], model: str | None = None, **source: Any) -> str:
    body = {"input": [{"type": "video_url", "url": url, **source}], "steps": steps, "model": model}
    response = post(service, "/v1/video/process", body)
    assert response.status_code == 202, response.text
    task_id: str = response.json()["id"]
    return task_id


def test_video_steps_attach_to_targets_and_roll_up_per_track(service: Service) -> None:
    steps = [
        {"model": "detect", "parameters": {"classes": ["person", "car"]}},
        {"model": "feature", "when": {"class_is": ["person"]}},
        {"model": "ocr", "when": {"class_is": ["car"]}},
    ]
    task_id = video(service, f"{service.media_url}/walk.mp4", steps, sampling={"mode": "interval", "value": 2})
    task = wait_terminal(service, task_id)
    assert task["status"] == "succeeded", task["error"]
    chunks = [event.json() for event in data_events(read_stream(service, task_id))[:-1]]
    targets = [target for chunk in chunks[:-1] for target in chunk["delta"]["results"][0]["targets"]]
    assert targets and all(target["class"] == "person" for target in targets)
    assert all(DIGEST.match(target["feature_digest"]) for target in targets), "feature ran on every person"
    assert not any("ocr" in target or "feature" in target for target in targets), "ocr only on cars; no vectors"
    with service.client() as client:
        results = client.get(f"/v1/video/tasks/{task_id}/results").json()
        full = client.get(f"/v1/video/tasks/{task_id}/results", params={"include": "embeddings"}).json()
    assert "track_embeddings" not in results
    track = results["tracks"][0]
    match = DIGEST.match(track["feature_digest"])
    assert match and match.group(1) == "960"
    mean = np.asarray(full["track_embeddings"][str(track["track_id"])], dtype=np.float64)
    assert mean.shape == (960,) and f"{np.linalg.norm(mean):.4f}" == match.group(2)


def test_face_step_on_person_targets_in_a_real_film(service: Service) -> None:
    steps = [
        {"model": "detect", "parameters": {"classes": ["person"]}},
        {"model": "face", "when": {"class_is": ["person"], "min_confidence": 0.5}},
    ]
    source = {"sampling": {"mode": "fps", "value": 1}, "range": {"start": 1, "end": 9}}
    task_id = video(service, f"{service.media_url}/Megamind.avi", steps, **source)
    task = wait_terminal(service, task_id)
    assert task["status"] == "succeeded", task["error"]
    chunks = [event.json() for event in data_events(read_stream(service, task_id))[:-1]]
    faces = [
        face
        for chunk in chunks[:-1]
        for target in chunk["delta"]["results"][0]["targets"]
        for face in target.get("faces", [])
    ]
    assert faces, "a film with people close to the camera shows faces"
    assert all(DIGEST.match(face["descriptor_digest"]).group(1) == "1024" for face in faces)  # type: ignore[union-attr]


def _wait_until_idle(service: Service, timeout: float = 120) -> None:
    """Until no task of any project is running (capacity counts them cluster-wide)."""
    deadline = time.monotonic() + timeout
    with service.client() as client:
        while client.get("/v1/status/capacity").json()["running_tasks"] > 0:
            assert time.monotonic() < deadline, "tasks of earlier tests still running"
            time.sleep(0.2)


def test_two_concurrent_tasks_are_batched_in_the_models(service: Service) -> None:
    from ray import serve

    steps = [{"model": "detect", "parameters": {"classes": ["person"]}}, {"model": "feature"}]
    source = {"sampling": {"mode": "fps", "value": 5}, "max_frames": 40}
    # on CPU the detector runs in the task worker (detector_placement auto), batched across its tasks
    worker = serve.get_deployment_handle("TaskWorker", app_name="visiongrid")
    embedder = serve.get_deployment_handle("EmbedderDeployment", app_name="visiongrid")
    _wait_until_idle(service)  # an earlier test's task would hold a slot and the two would not overlap
    before_detect = worker.detector_batch_stats.remote().result()
    before_embed = embedder.batch_stats.remote().result()
    tasks = [video(service, f"{service.media_url}/vtest.avi", steps, **source) for _ in range(2)]
    assert [wait_terminal(service, task)["status"] for task in tasks] == ["succeeded", "succeeded"]

    def batched_calls(before: dict[int, int], after: dict[int, int]) -> int:
        return sum(count - before.get(size, 0) for size, count in after.items() if size > 1)

    assert batched_calls(before_detect, worker.detector_batch_stats.remote().result()) > 0
    assert batched_calls(before_embed, embedder.batch_stats.remote().result()) > 0


def test_describe_in_a_video_fails_over_before_the_first_chunk(service: Service, providers: Providers) -> None:
    steps = [{"model": "detect"}, {"model": "describe", "parameters": {"segment_frames": 5}}]
    task_id = video(
        service, f"{service.media_url}/walk.mp4", steps, "flaky-vlm", sampling={"mode": "interval", "value": 2}
    )
    task = wait_terminal(service, task_id)
    assert task["status"] == "succeeded", task["error"]
    chunks = [event.json() for event in data_events(read_stream(service, task_id))[:-1]]
    assert chunks[0]["model"] == "flaky-vlm"
    described = [
        chunk["delta"]["results"][0]["description"]
        for chunk in chunks
        if chunk["delta"]["results"] and chunk["delta"]["results"][0].get("description")
    ]
    assert len(described) == 2, "10 frames in segments of 5"
    assert {d["provider"] for d in described} == {"standin-vlm"}
    assert described[0]["first_frame"] == 0 and described[0]["last_frame"] == 8
    with service.client() as client:
        results = client.get(f"/v1/video/tasks/{task_id}/results").json()
    assert [d["provider"] for d in results["descriptions"]] == ["standin-vlm", "standin-vlm"]


def test_a_provider_failing_mid_stream_ends_the_task_with_the_archive_kept(
    service: Service, providers: Providers
) -> None:
    providers.flaky.mode = "ok"
    try:
        steps = [{"model": "detect"}, {"model": "describe"}]
        source = {"sampling": {"mode": "fps", "value": 4}, "max_frames": 200}
        task_id = video(service, f"{service.media_url}/vtest.avi", steps, "flaky-vlm", **source)
        deadline = time.monotonic() + 30
        while not providers.flaky.received or providers.flaky.received[-1].body["model"] != "flaky-model":
            assert time.monotonic() < deadline
            time.sleep(0.01)
        while True:  # wait for a chunk to be archived, then break the provider
            with service.client() as client:
                if client.get(f"/v1/video/tasks/{task_id}").json()["progress"]["processed_frames"] >= 1:
                    break
            assert time.monotonic() < deadline
            time.sleep(0.01)
        providers.flaky.mode = "fail"
        task = wait_terminal(service, task_id)
    finally:
        providers.flaky.mode = "fail"
    assert task["status"] == "failed" and task["error"]["code"] == "describe_failed"
    chunks = [event.json() for event in data_events(read_stream(service, task_id))[:-1]]
    frames = [chunk for chunk in chunks if chunk["finish_reason"] is None]
    assert frames and all(chunk["delta"]["results"][0]["description"]["provider"] == "flaky-vlm" for chunk in frames)
    assert chunks[-1]["finish_reason"] == "error" and chunks[-1]["error"]["code"] == "describe_failed"


def test_video_bad_steps_name_the_field(service: Service) -> None:
    cases = [
        ([{"model": "detect"}, {"model": "ocr", "when": {"class_is": ["unicorn"]}}], None, "steps[1].when.class_is[0]"),
        (
            [{"model": "detect"}, {"model": "ocr", "when": {"min_confidence": "high"}}],
            None,
            "steps[1].when.min_confidence",
        ),
        ([{"model": "detect"}, {"model": "describe"}], "gpt-99", "model"),
        ([{"model": "detect", "parameters": {"model": "yolov99"}}], None, "steps[0].parameters.model"),
        ([{"model": "feature"}], None, "steps[0].model"),
        ([{"model": "teleport"}], None, "steps[0].model"),
    ]
    for steps, model, field in cases:
        body = {
            "input": [{"type": "video_url", "url": f"{service.media_url}/walk.mp4"}],
            "steps": steps,
            "model": model,
        }
        response = post(service, "/v1/video/process", body)
        assert response.status_code == 400, (steps, response.text)
        assert response.json()["error"]["field"] == field, (steps, response.json())


def test_a_batch_can_be_deleted_with_its_staged_images(service: Service, media_dir: Path) -> None:
    images = [{"data_base64": b64((media_dir / "horses.jpg").read_bytes()), "id": "h"}]
    response = post(service, "/v1/vision/batch", {"images": images})
    location = response.headers["Location"]
    assert wait_batch(service, location)["status"] == "finished"
    with service.client() as client:
        staged_before = client.get("/v1/storage/files", params={"path": "staged", "limit": 1000}).json()["data"]
        finished = client.post(f"{location}/cancel")
        assert finished.status_code == 200 and finished.json()["status"] == "finished", "a finished batch stays so"
        assert client.delete(location).status_code == 204
        assert client.get(location).status_code == 404
        staged_after = client.get("/v1/storage/files", params={"path": "staged", "limit": 1000}).json()["data"]
    assert len(staged_after) == len(staged_before) - 1
    with service.client(service.key_b) as client:
        assert client.delete(location).status_code == 404
