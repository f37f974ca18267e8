"""Resumable chunked uploads over HTTP on the real service (Ray Serve + SeaweedFS)."""

from __future__ import annotations

import hashlib

import httpx

from tests.e2e.conftest import Service


def test_chunked_upload_round_trip_and_other_projects_get_404(service: Service) -> None:
    data = b"chunked upload through the API " * 100
    digest = hashlib.sha256(data).hexdigest()
    with service.client() as client:
        created = client.post("/v1/storage/uploads", json={"path": "up/one.bin", "size": len(data), "sha256": digest})
        assert created.status_code == 201, created.text
        upload = created.json()
        assert upload["object"] == "storage.upload" and upload["chunks"] == 1 and upload["received"] == []
        assert upload["status"] == "open"
        bad_n = client.put(f"/v1/storage/uploads/{upload['id']}/chunks/1", content=data)
        assert bad_n.status_code == 400 and bad_n.json()["error"]["field"] == "n"
        early = client.post(f"/v1/storage/uploads/{upload['id']}/finalize")
        assert early.status_code == 400 and early.json()["error"]["missing"] == [0]
        with service.client(service.key_b) as other:
            assert other.get(f"/v1/storage/uploads/{upload['id']}").status_code == 404
            assert other.put(f"/v1/storage/uploads/{upload['id']}/chunks/0", content=data).status_code == 404
            assert other.delete(f"/v1/storage/uploads/{upload['id']}").status_code == 404
        sent = client.put(f"/v1/storage/uploads/{upload['id']}/chunks/0", content=data)
        assert sent.status_code == 200 and sent.json() == {"received": [0]}
        assert client.get(f"/v1/storage/uploads/{upload['id']}").json()["received"] == [0]
        done = client.post(f"/v1/storage/uploads/{upload['id']}/finalize")
        assert done.status_code == 200, done.text
        assert done.json() == {
            "path": "up/one.bin",
            "storage_url": "storage://up/one.bin",
            "size": len(data),
            "sha256": digest,
        }
        redirect = client.get("/v1/storage/files/up/one.bin", follow_redirects=False)
        assert httpx.get(redirect.headers["location"]).content == data
        too_big = client.post("/v1/storage/uploads", json={"path": "x.bin", "size": 10**15, "sha256": digest})
        assert too_big.status_code == 413
        aborted = client.post("/v1/storage/uploads", json={"path": "up/two.bin", "size": 5, "sha256": digest}).json()
        assert client.delete(f"/v1/storage/uploads/{aborted['id']}").status_code == 204
