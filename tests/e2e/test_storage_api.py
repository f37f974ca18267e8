"""Per-project storage over HTTP against the real S3 server (SeaweedFS) the test session starts."""

from __future__ import annotations

import base64
from pathlib import Path

import httpx
import pytest

from tests.clips import write_walking_person_clip
from tests.e2e.conftest import Service
from tests.e2e.test_video_api import wait_terminal


def upload(service: Service, path: str, data: bytes, key: str | None = None) -> dict[str, object]:
    with service.client(key) as client:
        response = client.post(
            "/v1/storage/upload", json={"path": path, "size": len(data), "content_type": "application/octet-stream"}
        )
    assert response.status_code == 200, response.text
    signed = response.json()
    put = httpx.put(str(signed["url"]), content=data, headers=dict(signed["headers"]))  # type: ignore[arg-type]
    assert put.status_code == 200, put.text
    return signed


def test_presigned_put_then_get_round_trips_bytes(service: Service) -> None:
    data = b"visiongrid storage " * 1000
    signed = upload(service, "clips/a.bin", data)
    assert signed["storage_url"] == "storage://clips/a.bin" and signed["method"] == "PUT"
    with service.client() as client:
        redirect = client.get("/v1/storage/files/clips/a.bin", follow_redirects=False)
        assert redirect.status_code == 302
        assert httpx.get(redirect.headers["location"]).content == data
        listed = client.get("/v1/storage/files", params={"path": "clips"}).json()
    assert [item["path"] for item in listed["data"]] == ["clips/a.bin"]
    assert listed["data"][0]["size"] == len(data)


def test_put_of_a_different_length_than_signed_is_refused(service: Service) -> None:
    with service.client() as client:
        signed = client.post("/v1/storage/upload", json={"path": "clips/exact.bin", "size": 10}).json()
    response = httpx.put(signed["url"], content=b"x" * 11, headers={"Content-Length": "11"})
    assert response.status_code in (400, 403)


@pytest.mark.parametrize("path", ["../escape.bin", "/etc/passwd", "a//b", "a/./b", "a\\b"])
def test_traversal_and_absolute_paths_are_400(service: Service, path: str) -> None:
    with service.client() as client:
        response = client.post("/v1/storage/upload", json={"path": path, "size": 1})
    assert response.status_code == 400 and response.json()["error"]["field"] == "path"


def test_oversize_is_413_and_expiry_is_bounded(service: Service) -> None:
    with service.client() as client:
        too_big = client.post("/v1/storage/upload", json={"path": "big.bin", "size": 51 * 1024 * 1024})
        assert too_big.status_code == 413 and too_big.json()["error"]["code"] == "object_too_large"
        too_long = client.post("/v1/storage/presign", json={"path": "a.bin", "expires_in": 10**9})
        assert too_long.status_code == 400 and too_long.json()["error"]["field"] == "expires_in"
        no_size = client.post("/v1/storage/presign", json={"path": "a.bin", "method": "PUT"})
        assert no_size.status_code == 400 and no_size.json()["error"]["field"] == "size"


def test_unknown_files_and_other_projects_files_are_404(service: Service) -> None:
    upload(service, "private/secret.bin", b"only project a")
    with service.client(service.key_b) as other:
        assert other.get("/v1/storage/files/private/secret.bin", follow_redirects=False).status_code == 404
        assert other.delete("/v1/storage/files/private/secret.bin").status_code == 404
        assert other.get("/v1/storage/files", params={"path": "private"}).json()["data"] == []
        presign = other.post("/v1/storage/presign", json={"path": "private/secret.bin"})
        assert presign.status_code == 404
    with service.client() as client:
        assert client.get("/v1/storage/files/nothing/here.bin", follow_redirects=False).status_code == 404
        assert client.delete("/v1/storage/files/private/secret.bin").status_code == 204
        assert client.get("/v1/storage/files/private/secret.bin", follow_redirects=False).status_code == 404


def test_a_video_in_storage_runs_as_a_task_and_stays_private(service: Service, media_dir: Path, tmp_path: Path) -> None:
    clip = write_walking_person_clip(media_dir, tmp_path / "walk.mp4", frames=6)
    upload(service, "videos/walk.mp4", clip.read_bytes())
    body = {
        "input": [
            {"type": "video_url", "url": "storage://videos/walk.mp4", "sampling": {"mode": "interval", "value": 1}}
        ],
        "steps": [{"model": "detect"}],
    }
    with service.client() as client:
        created = client.post("/v1/video/process", json=body)
        assert created.status_code == 202, created.text
        task = wait_terminal(service, created.json()["id"])
        missing = client.post(
            "/v1/video/process", json={**body, "input": [{"type": "video_url", "url": "storage://videos/none.mp4"}]}
        )
    assert task["status"] == "succeeded" and task["usage"]["processed_frames"] == 6
    assert missing.status_code == 400 and missing.json()["error"]["field"] == "input[0].url"
    with service.client(service.key_b) as other:
        theirs = other.post("/v1/video/process", json=body)
    assert theirs.status_code == 400 and theirs.json()["error"]["code"] == "media_not_found"


def test_base64_videos_are_staged_in_storage_and_deleted_with_the_task(
    service: Service, media_dir: Path, tmp_path: Path
) -> None:
    clip = write_walking_person_clip(media_dir, tmp_path / "b64.mp4", frames=4)
    body = {
        "input": [
            {
                "type": "video_base64",
                "data": base64.b64encode(clip.read_bytes()).decode(),
                "max_frames": 4,
                "sampling": {"mode": "interval", "value": 1},
            }
        ],
        "steps": [{"model": "detect"}],
    }
    with service.client(service.key_b) as client:  # project b: its storage starts empty
        response = client.post("/v1/video/process", json=body)
        assert response.status_code == 202, response.text
        created = response.json()
        task = wait_terminal(service, created["id"], key=service.key_b)
        staged = client.get("/v1/storage/files", params={"path": "staged"}).json()["data"]
        assert task["status"] == "succeeded" and len(staged) == 1
        assert staged[0]["size"] == len(clip.read_bytes())
        assert client.delete(f"/v1/video/tasks/{created['id']}").status_code == 204
        assert client.get("/v1/storage/files", params={"path": "staged"}).json()["data"] == []


def test_a_raw_video_body_is_staged_and_runs(service: Service, media_dir: Path, tmp_path: Path) -> None:
    clip = write_walking_person_clip(media_dir, tmp_path / "raw.mp4", frames=5).read_bytes()
    params = {"steps": "detect", "classes": "pedestrian", "sampling": "interval", "value": 1, "model": "raw-hint"}
    with service.client() as client:
        response = client.post("/v1/video/process", params=params, content=clip, headers={"Content-Type": "video/mp4"})
        assert response.status_code == 202, response.text
        assert response.headers["Location"].endswith(response.json()["id"])
        task = wait_terminal(service, response.json()["id"])
        echoed = client.get(f"/v1/video/tasks/{task['id']}", params={"include": "request"}).json()["request"]
        bad = client.post(
            "/v1/video/process", params={"steps": "levitate"}, content=clip, headers={"Content-Type": "video/mp4"}
        )
        empty = client.post("/v1/video/process", content=b"", headers={"Content-Type": "video/mp4"})
    assert task["status"] == "succeeded" and task["usage"]["processed_frames"] == 5 and task["model"] == "raw-hint"
    assert echoed["input"][0]["url"].startswith("storage://staged/")
    assert echoed["steps"][0]["parameters"] == {"classes": ["pedestrian"]}
    assert bad.status_code == 400 and bad.json()["error"]["field"] == "steps[0].model"
    assert empty.status_code == 400 and empty.json()["error"]["field"] == "body"


def test_our_presigned_get_url_is_video_input_read_through_the_object_store(
    service: Service, media_dir: Path, tmp_path: Path
) -> None:
    """The documented upload → presign → process flow: the URL is verified and read through S3 (the
    stored request names the object, not the URL), and only by the project that signed it."""
    clip = write_walking_person_clip(media_dir, tmp_path / "signed.mp4", frames=5).read_bytes()
    upload(service, "signed/clip.mp4", clip)
    with service.client() as client:
        signed = client.post("/v1/storage/presign", json={"path": "signed/clip.mp4", "method": "GET"}).json()["url"]
        body = {
            "input": [{"type": "video_url", "url": signed, "sampling": {"mode": "interval", "value": 1}}],
            "steps": [{"model": "detect"}],
        }
        response = client.post("/v1/video/process", json=body)
        assert response.status_code == 202, response.text
        task = wait_terminal(service, response.json()["id"])
        echoed = client.get(f"/v1/video/tasks/{task['id']}", params={"include": "request"}).json()["request"]
    assert task["status"] == "succeeded" and task["usage"]["processed_frames"] == 5
    assert echoed["input"][0]["url"] == "storage://signed/clip.mp4"
    with service.client(service.key_b) as other:
        refused = other.post("/v1/video/process", json=body)
    assert refused.status_code == 400, refused.text
    assert refused.json()["error"]["code"] == "media_not_found" and refused.json()["error"]["field"] == "input[0].url"
    tampered = {**body, "input": [{**body["input"][0], "url": signed.replace("Signature=", "Signature=0")}]}
    with service.client() as client:
        answer = client.post("/v1/video/process", json=tampered)
    assert answer.status_code == 400 and answer.json()["error"]["code"] == "url_not_allowed", answer.text
