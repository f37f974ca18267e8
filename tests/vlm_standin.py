"""A loopback OpenAI-compatible chat-completions server standing in for an external VLM provider.

No vision-language model can run here, so the `describe` provider chain is tested against
this small FastAPI app served by uvicorn in a thread on a free port. Each instance can be set
to answer (with a checkable text naming the image size it decoded), fail with a status, hang
past the client's timeout, or answer malformed JSON; it records every request it got.
"""

from __future__ import annotations

import asyncio
import base64
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from visiongrid.s3_server import free_ports


@dataclass
class Received:
    """One request as the stand-in saw it."""

    body: dict[str, Any]
    authorization: str | None

    @property
    def prompt(self) -> str:
        parts = self.body["messages"][-1]["content"]
        return "".join(part["text"] for part in parts if part["type"] == "text")

    @property
    def image(self) -> np.ndarray:
        """The decoded image (RGB) the request carried."""
        parts = self.body["messages"][-1]["content"]
        url = next(part["image_url"]["url"] for part in parts if part["type"] == "image_url")
        assert url.startswith("data:image/jpeg;base64,"), url[:40]
        data = np.frombuffer(base64.b64decode(url.split(",", 1)[1]), np.uint8)
        bgr = cv2.imdecode(data, cv2.IMREAD_COLOR)
        assert bgr is not None, "the image is not a decodable JPEG"
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


@dataclass
class StandInVLM:
    """Behaviour: ``mode`` is "ok", "fail" (answers ``status``), "hang" (sleeps ``hang_s``) or "garbage"."""

    reply: str = "A stand-in description."
    mode: str = "ok"
    status: int = 503
    hang_s: float = 3.0
    received: list[Received] = field(default_factory=list)
    port: int = 0
    _server: uvicorn.Server | None = None
    _thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/v1/chat/completions")
        async def chat(request: Request) -> Response:
            body = await request.json()
            self.received.append(Received(body, request.headers.get("authorization")))
            if self.mode == "fail":
                return JSONResponse({"error": {"message": f"stand-in failing with {self.status}"}}, self.status)
            if self.mode == "hang":
                await asyncio.sleep(self.hang_s)
            if self.mode == "garbage":
                return PlainTextResponse("this is not json", 200)
            height, width = Received(body, None).image.shape[:2]
            content = f"{self.reply} [model={body['model']} image={width}x{height}]"
            return JSONResponse(
                {
                    "id": "chatcmpl-standin",
                    "object": "chat.completion",
                    "model": body["model"],
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": content}}],
                }
            )

        return app

    def start(self) -> StandInVLM:
        self.port = free_ports(1)[0]
        config = uvicorn.Config(
            self.app(), host="127.0.0.1", port=self.port, log_level="warning", timeout_graceful_shutdown=1
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the VLM stand-in did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=5)
