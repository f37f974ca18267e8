"""The Python client of the VisionGrid API, typed from the service's own contract (``contract.*``).

    from visiongrid.client import Client

    with Client("http://127.0.0.1:8080", api_key="vg_...") as client:
        upload = client.storage.upload("clips/walk.mp4", "walk.mp4", progress=print)
        task = client.video.process({"input": [{"type": "video_url", "url": upload.storage_url}],
                                     "steps": [{"model": "detect"}]})
        for chunk in client.video.stream(task.id):      # resumes by itself after a dropped connection
            ...
        result = client.video.results(task.id)

:class:`AsyncClient` is the same, awaited. Errors are one exception type per error code
(:mod:`visiongrid.client.errors`); 429/503 answers and broken connections are retried with backoff,
honouring ``Retry-After``.
"""

from __future__ import annotations

from visiongrid.client._core import RetryPolicy
from visiongrid.client.async_client import AsyncClient
from visiongrid.client.errors import APIConnectionError, APIStatusError, VisionGridClientError
from visiongrid.client.sync_client import Client

__all__ = ["APIConnectionError", "APIStatusError", "AsyncClient", "Client", "RetryPolicy", "VisionGridClientError"]
