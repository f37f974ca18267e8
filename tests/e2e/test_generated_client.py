"""A client generated from the live ``/openapi.json`` by a real generator (openapi-python-client) runs
the README's quick start against the running service: if the document lied about a path, a field, a
body or a status, the generated code would not build the request or would fail to parse the answer."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest

from contract.chunks import Chunk, TaskResult
from tests.e2e.conftest import Service
from tests.e2e.sse import parse

GENERATOR = Path(sys.executable).parent / "openapi-python-client"
PACKAGE = "visiongrid_generated"


@pytest.fixture(scope="module")
def generated(service: Service, tmp_path_factory: pytest.TempPathFactory) -> ModuleType:
    root = tmp_path_factory.mktemp("generated-client")
    spec = root / "openapi.json"
    spec.write_text(json.dumps(httpx.get(f"{service.base_url}/openapi.json").raise_for_status().json()))
    config = root / "config.yaml"
    config.write_text(f"post_hooks: []\nproject_name_override: {PACKAGE}\npackage_name_override: {PACKAGE}\n")
    command = [str(GENERATOR), "generate", "--path", str(spec), "--output-path", str(root / PACKAGE)]
    done = subprocess.run([*command, "--meta", "none", "--config", str(config)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    sys.path.insert(0, str(root))
    try:
        return importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(root))


def module(generated: ModuleType, name: str) -> Any:
    return importlib.import_module(f"{generated.__name__}.{name}")


def test_the_quick_start_runs_through_the_generated_client(generated: ModuleType, service: Service) -> None:
    models = module(generated, "models")
    client = generated.AuthenticatedClient(base_url=service.base_url, token=service.key_a, timeout=httpx.Timeout(60))
    video = f"{service.media_url}/walk.mp4"
    request = models.ProcessRequest.from_dict(
        {
            "input": [{"type": "video_url", "url": video, "sampling": {"mode": "fps", "value": 5}, "max_frames": 300}],
            "steps": [{"model": "detect", "parameters": {"classes": ["pedestrian"]}}],
        }
    )
    created = module(generated, "api.video.video_process").sync(client=client, body=request)
    assert isinstance(created, models.TaskCreated), created
    get_task = module(generated, "api.video.video_get_task")
    deadline = time.monotonic() + 120
    while (task := get_task.sync(client=client, task_id=created.id)).status.value not in ("succeeded", "failed"):
        assert time.monotonic() < deadline, task
        time.sleep(0.2)
    assert task.status.value == "succeeded"

    stream = module(generated, "api.video.video_stream").sync_detailed(client=client, task_id=created.id)
    events = [event for event in parse(stream.content) if not event.comment]
    assert events[-1].data == "[DONE]"
    chunks = [event.json() for event in events[:-1]]
    assert len(chunks) >= 2
    for chunk in chunks:  # the schema the document references for SSE data lines is what is sent
        Chunk.model_validate(chunk)
        models.Chunk.from_dict(chunk)

    result = module(generated, "api.video.video_results").sync(client=client, task_id=created.id)
    assert isinstance(result, models.TaskResult), result
    assert [track.class_ for track in result.tracks] == ["pedestrian"]
    TaskResult.model_validate(result.to_dict())

    detect = models.DetectImageRequest.from_dict({"image": {"url": f"{service.media_url}/dog.jpg"}, "classes": ["dog"]})
    found = module(generated, "api.vision.vision_detect").sync(client=client, body=detect)
    assert isinstance(found, models.VisionResult), found
    assert {target.class_ for target in found.targets} == {"dog"}

    create = module(generated, "api.vectors.vectors_create_collection")
    collection = create.sync(client=client, body=models.CollectionCreate.from_dict({"name": "quick-start-photos"}))
    assert isinstance(collection, models.Collection), collection
    items = models.IndexRequest.from_dict(
        {
            "items": [
                {"id": "a", "image": {"url": f"{service.media_url}/dog.jpg"}, "metadata": {"camera": 3}},
                {"id": "b", "text": "a red fire engine by the station"},
            ]
        }
    )
    indexed = module(generated, "api.vectors.vectors_index_items").sync(
        client=client, collection_id=collection.id, body=items
    )
    assert isinstance(indexed, models.IndexResult) and indexed.indexed == 2, indexed
    query = models.SearchRequest.from_dict({"text_query": "fire truck", "top_k": 5})
    hits = module(generated, "api.vectors.vectors_search").sync(client=client, collection_id=collection.id, body=query)
    assert isinstance(hits, models.SearchResults), hits
    assert hits.data[0].id == "b"


def test_errors_parse_as_the_declared_envelope(generated: ModuleType, service: Service) -> None:
    models = module(generated, "models")
    client = generated.AuthenticatedClient(base_url=service.base_url, token=service.key_a)
    bad = models.ProcessRequest.from_dict(
        {
            "input": [
                {
                    "type": "video_url",
                    "url": "https://example.com/a.mp4",
                    "sampling": {"mode": "interval", "value": 1.5},
                }
            ],
            "steps": [{"model": "detect"}],
        }
    )
    answer = module(generated, "api.video.video_process").sync_detailed(client=client, body=bad)
    assert answer.status_code == 400
    assert isinstance(answer.parsed, models.ErrorEnvelope)
    assert answer.parsed.error.field == "input[0].sampling.value"
    assert answer.parsed.error.code.value == "invalid_request"
    missing = module(generated, "api.video.video_get_task").sync_detailed(client=client, task_id="vt_nope")
    assert missing.status_code == 404 and isinstance(missing.parsed, models.ErrorEnvelope)
