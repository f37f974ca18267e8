"""Vectors end to end over HTTP: a real Chroma server (its own venv), real embedding models, the
real cluster. Collections, indexing, filtered and weighted search, video tracks found across
clips, Chroma going down and coming back, and isolation between projects."""

from __future__ import annotations

import base64
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.chroma import ChromaServer
from tests.e2e.conftest import Service
from tests.e2e.test_video_api import data_events, read_stream, wait_terminal

PHOTOS = {"dog": "dog.jpg", "horses": "horses.jpg", "giraffe": "giraffe.jpg", "messi": "messi5.jpg"}


def post(service: Service, path: str, body: dict[str, Any], key: str | None = None) -> Any:
    with service.client(key) as client:
        return client.post(path, json=body)


def get(service: Service, path: str, key: str | None = None, **params: Any) -> Any:
    with service.client(key) as client:
        return client.get(path, params=params)


def create(service: Service, name: str, model: str = "multimodal", key: str | None = None) -> dict[str, Any]:
    response = post(service, "/v1/vectors/collections", {"name": name, "model": model}, key)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def search(service: Service, collection: str, body: dict[str, Any], key: str | None = None) -> list[dict[str, Any]]:
    response = post(service, f"/v1/vectors/collections/{collection}/search", body, key)
    assert response.status_code == 200, response.text
    hits: list[dict[str, Any]] = response.json()["data"]
    return hits


@pytest.fixture(scope="module")
def photos(service: Service) -> str:
    """A multimodal collection with four real photos (by URL) and two text items."""
    collection = create(service, "photos")
    items: list[dict[str, Any]] = [
        {
            "id": name,
            "image": {"url": f"{service.media_url}/{file}"},
            "metadata": {"kind": "animal" if name in ("dog", "horses", "giraffe") else "sport", "legs": 4},
        }
        for name, file in PHOTOS.items()
    ]
    items[3]["metadata"]["legs"] = 2
    items += [
        {"id": "note-1", "text": "a red fire engine parked by the station", "metadata": {"kind": "note", "legs": 0}},
        {"id": "note-2", "text": "minutes of the budget meeting", "metadata": {"kind": "note", "legs": 0}},
    ]
    response = post(service, f"/v1/vectors/collections/{collection['id']}/index", {"items": items})
    assert response.status_code == 200, response.text
    assert response.json()["indexed"] == 6 and response.json()["vectors"] == {"text": 6, "image": 4}
    return str(collection["id"])


def test_models_say_what_each_space_is(service: Service) -> None:
    body = get(service, "/v1/vectors/models").json()
    spaces = {model["space"]: model for model in body["data"]}
    assert spaces["text"]["dim"] == 384 and spaces["image"]["dim"] == 960 and spaces["face"]["dim"] == 1024
    assert "description" in body["text_to_image"] and "audio" in body["audio"]
    assert body["collection_models"]["multimodal"] == ["text", "image"]


def test_collections_are_per_project(service: Service, photos: str) -> None:
    listed = get(service, "/v1/vectors/collections").json()["data"]
    assert photos in {collection["id"] for collection in listed}
    view = get(service, f"/v1/vectors/collections/{photos}").json()
    assert view["name"] == "photos" and [space["space"] for space in view["spaces"]] == ["text", "image"]
    assert get(service, f"/v1/vectors/collections/{photos}", service.key_b).status_code == 404
    assert photos not in {c["id"] for c in get(service, "/v1/vectors/collections", service.key_b).json()["data"]}
    other = post(service, f"/v1/vectors/collections/{photos}/search", {"text_query": "dog"}, service.key_b)
    assert other.status_code == 404
    duplicate = post(service, "/v1/vectors/collections", {"name": "photos"})
    assert duplicate.status_code == 409 and duplicate.json()["error"]["field"] == "name"


def test_an_indexed_image_is_its_own_nearest_neighbour(service: Service, photos: str, media_dir: Path) -> None:
    for name, file in PHOTOS.items():
        data = base64.b64encode((media_dir / file).read_bytes()).decode()
        hits = search(service, photos, {"image_data": data, "top_k": 3})
        assert hits[0]["id"] == name, hits
        assert hits[0]["scores"]["image"] > 0.99 and hits[0]["kind"] == "image"


def test_text_search_finds_the_image_whose_description_matches(service: Service, photos: str) -> None:
    assert search(service, photos, {"text_query": "horses", "top_k": 3})[0]["id"] == "horses"
    assert search(service, photos, {"text_query": "a giraffe", "top_k": 3})[0]["id"] == "giraffe"
    assert search(service, photos, {"text_query": "fire truck", "top_k": 3})[0]["id"] == "note-1"
    hit = search(service, photos, {"text_query": "horses", "top_k": 1})[0]
    assert "horse" in hit["text"].lower(), "the hit carries the description it was found by"


def test_filters_hold(service: Service, photos: str) -> None:
    hits = search(service, photos, {"text_query": "animal", "where": {"kind": "animal"}, "top_k": 10})
    assert {hit["id"] for hit in hits} == {"dog", "horses", "giraffe"}
    conditions = [
        {"field": "legs", "operator": "gte", "value": 2, "type": "number"},
        {"field": "kind", "operator": "not_equals", "value": "animal", "type": "string"},
    ]
    hits = search(service, photos, {"text_query": "people", "conditions": conditions, "top_k": 10})
    assert [hit["id"] for hit in hits] == ["messi"]
    assert hits[0]["metadata"] == {"kind": "sport", "legs": 2}
    bad = post(
        service,
        f"/v1/vectors/collections/{photos}/search",
        {"text_query": "x", "conditions": [{"field": "kind", "operator": "resembles", "value": "a"}]},
    )
    assert bad.status_code == 400 and bad.json()["error"]["field"] == "conditions[0].operator"


def test_weights_move_the_results(service: Service, photos: str, media_dir: Path) -> None:
    dog = base64.b64encode((media_dir / "dog.jpg").read_bytes()).decode()
    text_heavy = search(
        service, photos, {"text_query": "horses", "image_data": dog, "text_weight": 1, "image_weight": 0.05}
    )
    image_heavy = search(
        service, photos, {"text_query": "horses", "image_data": dog, "text_weight": 0.05, "image_weight": 1}
    )
    assert text_heavy[0]["id"] == "horses" and image_heavy[0]["id"] == "dog"
    assert set(text_heavy[0]["scores"]) == {"text", "image"}


def test_index_is_idempotent_and_a_bad_batch_stores_nothing(service: Service, photos: str) -> None:
    before = get(service, f"/v1/vectors/collections/{photos}/items").json()["total"]
    again = post(
        service,
        f"/v1/vectors/collections/{photos}/index",
        {"items": [{"id": "note-2", "text": "minutes of the budget meeting", "metadata": {"kind": "note", "legs": 0}}]},
    )
    assert again.status_code == 200
    assert get(service, f"/v1/vectors/collections/{photos}/items").json()["total"] == before
    bad_batch = {
        "items": [
            {"id": "fresh", "text": "a brand new note"},
            {"id": "broken", "image": {"base64": base64.b64encode(b"not an image").decode()}},
        ]
    }
    failed = post(service, f"/v1/vectors/collections/{photos}/index", bad_batch)
    assert failed.status_code == 400 and failed.json()["error"]["field"] == "items[1].image"
    ids = {item["id"] for item in get(service, f"/v1/vectors/collections/{photos}/items", limit=1000).json()["data"]}
    assert "fresh" not in ids and "broken" not in ids


def test_items_page_and_delete(service: Service) -> None:
    collection = create(service, "notes", model="text")["id"]
    items = [{"id": f"n{i}", "text": f"note number {i}", "metadata": {"i": i}} for i in range(5)]
    assert post(service, f"/v1/vectors/collections/{collection}/index", {"items": items}).status_code == 200
    first = get(service, f"/v1/vectors/collections/{collection}/items", limit=3).json()
    second = get(service, f"/v1/vectors/collections/{collection}/items", limit=3, cursor=first["next_cursor"]).json()
    assert first["total"] == 5 and second["next_cursor"] is None
    assert {item["id"] for item in first["data"] + second["data"]} == {f"n{i}" for i in range(5)}
    with service.client() as client:
        assert client.delete(f"/v1/vectors/collections/{collection}/items", params={"ids": "n0,n1"}).status_code == 204
    remaining = get(service, f"/v1/vectors/collections/{collection}/items").json()
    assert remaining["total"] == 3
    with service.client() as client:
        assert client.delete(f"/v1/vectors/collections/{collection}").status_code == 204
    assert get(service, f"/v1/vectors/collections/{collection}").status_code == 404


@pytest.mark.parametrize(
    ("path", "body", "field", "code"),
    [
        (
            "/index",
            {"items": [{"id": "v", "vector": [0.1] * 10, "space": "image"}]},
            "items[0].vector",
            "dimension_mismatch",
        ),
        ("/index", {"items": [{"id": "a", "audio": "AAAA"}]}, "items[0].audio", "unsupported_modality"),
        (
            "/index",
            {"items": [{"id": "x", "text": "a", "image": {"url": "http://x/a.jpg"}}]},
            "items[0]",
            "invalid_request",
        ),
        ("/search", {"vector": [0.5] * 7, "space": "text"}, "vector", "dimension_mismatch"),
        ("/search", {"audio_data": "AAAA"}, "audio_data", "unsupported_modality"),
        ("/search", {"text_query": "x", "image_data": "data:image/png;base64,AAAA"}, "image_data", "invalid_base64"),
        ("/search", {"vector": [0.5] * 1024, "space": "face"}, "space", "model_mismatch"),
    ],
)
def test_bad_vector_requests_name_the_field(
    service: Service, photos: str, path: str, body: dict[str, Any], field: str, code: str
) -> None:
    response = post(service, f"/v1/vectors/collections/{photos}{path}", body)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["field"] == field and response.json()["error"]["code"] == code


def test_unknown_collection_and_model(service: Service) -> None:
    assert post(service, "/v1/vectors/collections/vc_nothing/search", {"text_query": "x"}).status_code == 404
    unknown = post(service, "/v1/vectors/collections", {"name": "x", "model": "clip"})
    assert unknown.status_code == 400 and unknown.json()["error"]["field"] == "model"
    audio = post(service, "/v1/vectors/collections", {"name": "y", "model": "audio"})
    assert audio.status_code == 400 and "audio" in audio.json()["error"]["message"]


def test_face_collection_finds_the_same_face(service: Service, media_dir: Path) -> None:
    collection = create(service, "faces", model="face")["id"]
    items = [{"id": "messi", "image": {"url": f"{service.media_url}/messi5.jpg"}}]
    response = post(service, f"/v1/vectors/collections/{collection}/index", {"items": items})
    assert response.status_code == 200, response.text
    assert response.json()["vectors"]["face"] >= 1
    data = base64.b64encode((media_dir / "messi5.jpg").read_bytes()).decode()
    hits = search(service, collection, {"image_data": data, "top_k": 1})
    assert hits[0]["id"] == "messi" and hits[0]["scores"]["face"] > 0.99


# --------------------------------------------------------------------------------------------- video


def first_person_boxes(service: Service, task_id: str) -> dict[int, dict[int, list[int]]]:
    """frame index → track id → roi [left, top, width, height] from a task's stream."""
    boxes: dict[int, dict[int, list[int]]] = {}
    for event in data_events(read_stream(service, task_id))[:-1]:
        chunk = event.json()
        if chunk["finish_reason"] is not None:
            continue
        for target in chunk["delta"]["results"][0]["targets"]:
            roi = target["roi"]
            boxes.setdefault(chunk["stream_info"]["frame_index"], {})[target["track_id"]] = [
                roi["left"],
                roi["top"],
                roi["width"],
                roi["height"],
            ]
    return boxes


def iou(a: list[int], b: list[int]) -> float:
    ax2, ay2, bx2, by2 = a[0] + a[2], a[1] + a[3], b[0] + b[2], b[1] + b[3]
    w = max(0, min(ax2, bx2) - max(a[0], b[0]))
    h = max(0, min(ay2, by2) - max(a[1], b[1]))
    inter = w * h
    return inter / float(a[2] * a[3] + b[2] * b[3] - inter)


def test_a_person_tracked_in_one_clip_is_found_from_another(service: Service) -> None:
    """Two clips cut from the same real street video (frames 0-150 and 100-250, overlapping): a person
    visible in both is one track in each; the second clip's track finds the first clip's in the top 5."""
    collection = create(service, "street-tracks", model="image")["id"]
    steps = [
        {"model": "detect", "parameters": {"classes": ["person"]}},
        {"model": "feature", "parameters": {"collection": collection}},
    ]
    tasks = []
    for start, end in ((0, 150), (100, 250)):
        body = {
            "input": [
                {
                    "type": "video_url",
                    "url": f"{service.media_url}/vtest.avi",
                    "sampling": {"mode": "interval", "value": 2},
                    "range": {"start": start, "end": end, "unit": "frames"},
                }
            ],
            "steps": steps,
        }
        response = post(service, "/v1/video/process", body)
        assert response.status_code == 202, response.text
        tasks.append(response.json()["id"])
    first, second = (wait_terminal(service, task_id, timeout=180) for task_id in tasks)
    assert first["status"] == second["status"] == "succeeded"
    results = get(service, f"/v1/video/tasks/{tasks[0]}/results").json()
    assert results["vectors"]["indexed_tracks"] == len(results["tracks"]) > 0
    boxes_a, boxes_b = first_person_boxes(service, tasks[0]), first_person_boxes(service, tasks[1])
    frame = 120  # in both clips, sampled in both (even)
    pairs = [
        (track_b, track_a)
        for track_b, box_b in boxes_b.get(frame, {}).items()
        for track_a, box_a in boxes_a.get(frame, {}).items()
        if iou(box_a, box_b) > 0.7
    ]
    assert len(pairs) >= 2, "people visible in both clips at the shared frame"
    found = 0
    for track_b, track_a in pairs:
        hits = search(service, collection, {"track": {"task_id": tasks[1], "track_id": track_b}, "top_k": 10})
        same_clip = [hit for hit in hits if hit["metadata"]["task_id"] == tasks[0]][:5]
        if f"{tasks[0]}:track:{track_a}" in {hit["id"] for hit in same_clip}:
            found += 1
        assert all(hit["metadata"]["class"] == "person" for hit in hits)
    assert found == len(pairs), f"{found} of {len(pairs)} people found across clips"
    with service.client() as client:
        missing = client.post(
            "/v1/video/process",
            json={
                "input": [{"type": "video_url", "url": f"{service.media_url}/walk.mp4"}],
                "steps": [{"model": "detect"}, {"model": "feature", "parameters": {"collection": "vc_gone"}}],
            },
        )
    assert missing.status_code == 404 and missing.json()["error"]["field"] == "steps[1].parameters.collection"


# --------------------------------------------------------------------------------------------- outage


def test_chroma_down_is_503_and_everything_else_works_then_recovers(
    service: Service, photos: str, chroma_server: ChromaServer
) -> None:
    chroma_server.stop()
    try:
        down = post(service, f"/v1/vectors/collections/{photos}/search", {"text_query": "horses"})
        assert down.status_code == 503 and down.json()["error"]["code"] == "vectors_unavailable"
        assert post(service, "/v1/vectors/collections", {"name": "while-down"}).status_code == 503
        assert get(service, "/v1/status").status_code == 200
        detect = post(service, "/v1/vision/detect", {"image": {"url": f"{service.media_url}/dog.jpg"}})
        assert detect.status_code == 200
        assert "while-down" not in {c["name"] for c in get(service, "/v1/vectors/collections").json()["data"]}
    finally:
        chroma_server.start()
    deadline = time.monotonic() + 30
    while True:
        response = post(service, f"/v1/vectors/collections/{photos}/search", {"text_query": "horses", "top_k": 1})
        if response.status_code == 200:
            break
        assert time.monotonic() < deadline, response.text
        time.sleep(0.2)
    assert response.json()["data"][0]["id"] == "horses", "the data survived the restart"


def test_track_vectors_are_unit_norm_means(service: Service) -> None:
    """The indexed track vector is the track's mean embedding, normalised (search with it scores ~1)."""
    collection = create(service, "walk-tracks", model="image")["id"]
    body = {
        "input": [
            {"type": "video_url", "url": f"{service.media_url}/walk.mp4", "sampling": {"mode": "interval", "value": 2}}
        ],
        "steps": [
            {"model": "detect", "parameters": {"classes": ["person"]}},
            {"model": "feature", "parameters": {"collection": collection}},
        ],
    }
    task_id = post(service, "/v1/video/process", body).json()["id"]
    assert wait_terminal(service, task_id)["status"] == "succeeded"
    full = get(service, f"/v1/video/tasks/{task_id}/results", include="embeddings").json()
    track_id, mean = next(iter(full["track_embeddings"].items()))
    vector = np.asarray(mean, dtype=np.float64)
    hits = search(service, collection, {"vector": (vector * 3).tolist(), "space": "image", "top_k": 1})
    assert hits[0]["id"] == f"{task_id}:track:{track_id}" and hits[0]["score"] > 0.999
