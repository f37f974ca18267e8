"""The pages a person opens work offline: ``/docs``, ``/redoc`` and ``/playground`` reference only
assets the app itself serves (no CDN), and every one of those assets is there."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

ASSET = re.compile(r"""(?:src|href)=["']([^"']+)["']|(?:url|openapi_url)\s*:\s*['"]([^'"]+)['"]""")
IMPORT = re.compile(r"""from\s+["'](\./[^"']+)["']""")


def _references(html: str) -> list[str]:
    return [a or b for a, b in ASSET.findall(html)]


@pytest.mark.parametrize("page", ["/docs", "/redoc", "/playground"])
def test_a_page_loads_nothing_from_elsewhere(client: TestClient, page: str) -> None:
    response = client.get(page)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    references = _references(response.text)
    assert references, "the page loads its scripts"
    outside = [ref for ref in references if ref.startswith(("http:", "https:", "//"))]
    assert not outside, outside
    for ref in references:
        if ref.startswith("/") and not ref.startswith("/v1") and ref != "/openapi.json":
            assert client.get(ref).status_code == 200, ref


def test_every_playground_module_is_served(client: TestClient) -> None:
    modules = ["app.js"]
    seen: set[str] = set()
    while modules:
        name = modules.pop()
        if name in seen:
            continue
        seen.add(name)
        response = client.get(f"/static/playground/{name}")
        assert response.status_code == 200 and "javascript" in response.headers["content-type"], name
        assert "http://" not in response.text and "https://" not in response.text, f"{name} loads nothing remote"
        modules += [found.removeprefix("./") for found in IMPORT.findall(response.text)]
    assert seen == {"app.js", "api.js", "overlay.js"}


def test_the_static_folders_serve_nothing_else(client: TestClient) -> None:
    for path in ["/static/playground/../web.py", "/static/vendor/../__init__.py", "/static/playground/nope.js"]:
        assert client.get(path).status_code == 404, path
