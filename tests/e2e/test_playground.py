"""The playground in a real headless Chromium (Playwright driving Debian's chromium) against the real
service: sign in, upload a real clip through the chunked-upload API, see boxes drawn over the playing
video (read back from the canvas's pixels), the SSE stream cut mid-way by a proxy and resumed with
every chunk once, the per-track thumbnails; a sync detect on a photo; a text search. Screenshots go
to ``.data/test-artifacts/playground/``."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, sync_playwright

from kernels.draw import colour_of
from tests.clips import write_walking_person_clip
from tests.e2e.conftest import Service
from tests.flaky_proxy import FlakyProxy
from visiongrid.client import Client

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("VISIONGRID_TEST_ARTIFACTS", ROOT / ".data" / "test-artifacts")) / "playground"
CHROMIUM = Path("/usr/bin/chromium")

#: How many canvas pixels are exactly ``colour`` (RGB, opaque).
PIXELS_OF = """([canvas, r, g, b]) => {
  const c = document.querySelector(canvas);
  if (!c.width || !c.height) return 0;
  const data = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
  let n = 0;
  for (let i = 0; i < data.length; i += 4) {
    if (data[i] === r && data[i + 1] === g && data[i + 2] === b && data[i + 3] === 255) n++;
  }
  return n;
}"""


@pytest.fixture
def page(proxy: FlakyProxy, service: Service) -> Iterator[Page]:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=["--no-sandbox", "--autoplay-policy=no-user-gesture-required"]
        )
        tab = browser.new_page(viewport={"width": 1280, "height": 900})
        errors: list[str] = []
        tab.on("pageerror", lambda error: errors.append(str(error)))
        tab.goto(f"{proxy.url}/playground")
        tab.fill("#key", service.key_a)
        tab.click("#signin button")
        tab.wait_for_function("document.body.dataset.signedIn === 'true'", timeout=20_000)
        yield tab
        browser.close()
        assert not errors, errors


def test_a_clip_is_uploaded_watched_with_boxes_and_its_stream_resumed(
    page: Page, proxy: FlakyProxy, service: Service, media_dir: Path, tmp_path: Path
) -> None:
    clip = write_walking_person_clip(media_dir, tmp_path / "walk.mp4", frames=40, fps=10)
    proxy.break_next(rb"GET /v1/video/tasks/[^ ]+/stream", after_bytes=4000)  # mid-way through the stream
    page.set_input_files("#file", str(clip))
    page.fill("#classes", "person")
    page.fill("#fps", "10")
    page.click("#go")
    r, g, b = colour_of(1)
    page.wait_for_function("window.playground.stats.chunks > 3", timeout=60_000)
    page.wait_for_function(f"({PIXELS_OF})(['#overlay', {r}, {g}, {b}]) > 40", timeout=30_000)  # track 1's box
    page.screenshot(path=str(ARTIFACTS / "video-boxes.png"))
    page.wait_for_function("window.playground.done === true", timeout=90_000)
    state: dict[str, Any] = page.evaluate(
        "({task: playground.task, frames: playground.frames, stats: playground.stats})"
    )
    assert proxy.broken == 1 and state["stats"]["reconnects"] >= 1, state["stats"]
    with Client(service.base_url, service.key_a) as client:
        served = [c.stream_info.frame_index for c in client.video.stream(state["task"]) if c.finish_reason is None]
        uploaded = client.storage.files("playground").data
    assert state["frames"] == served, "every chunk once, in order, across the reconnect"
    assert [item.path for item in uploaded] == ["playground/walk.mp4"]
    page.wait_for_function(
        "[...document.querySelectorAll('#tracks img')].some((i) => i.naturalWidth > 0)", timeout=30_000
    )
    assert "person" in page.inner_text("#tracks")
    assert page.evaluate("document.getElementById('video').videoWidth") == 640, "the source plays under the boxes"
    page.screenshot(path=str(ARTIFACTS / "video-tracks.png"), full_page=True)
    page.click("nav button[data-tab=tasks]")
    page.wait_for_selector(f"tr[data-task='{state['task']}']")
    assert "succeeded" in page.inner_text(f"tr[data-task='{state['task']}']")


def test_a_photo_is_detected_and_a_collection_searched(page: Page, service: Service, media_dir: Path) -> None:
    with Client(service.base_url, service.key_a) as client:
        collection = client.vectors.create("playground-notes", model="text")
        client.vectors.index(
            collection.id,
            [{"id": "engine", "text": "a red fire engine by the station"}, {"id": "form", "text": "a tax form"}],
        )
    page.click("nav button[data-tab=image]")
    page.set_input_files("#photo", str(media_dir / "dog.jpg"))
    page.select_option("#image-op", "detect")
    page.click("#image-form button")
    page.wait_for_function("document.querySelector('#image-results').innerText.includes('dog')", timeout=30_000)
    r, g, b = colour_of(0)
    assert page.evaluate(f"({PIXELS_OF})(['#image-canvas', {r}, {g}, {b}])") > 100, "the first box is drawn"
    page.screenshot(path=str(ARTIFACTS / "image-detect.png"), full_page=True)
    page.reload()
    page.wait_for_function("document.body.dataset.signedIn === 'true'", timeout=20_000)  # the key stays in the tab
    page.click("nav button[data-tab=search]")
    page.wait_for_selector(f"#collection option[value='{collection.id}']", state="attached")
    page.select_option("#collection", collection.id)
    page.fill("#query", "fire truck")
    page.click("#search-form button")
    page.wait_for_selector("#hits li")
    assert page.inner_text("#hits li:first-child").startswith("engine")
    page.screenshot(path=str(ARTIFACTS / "search.png"), full_page=True)
