"""The FastAPI application factory."""

from __future__ import annotations

from fastapi import FastAPI

from api.errors import install_error_handlers
from api.routes import status, storage, uploads, vectors, video, vision
from api.services import Services


def create_app(services: Services | None = None) -> FastAPI:
    """Build the app; ``services`` may be attached now or later (the Serve ingress does it
    in its constructor, because the app object must exist when the class is decorated)."""
    app = FastAPI(title="VisionGrid", version="0.1.0", description="Self-hosted video and image analysis API")
    install_error_handlers(app)
    app.include_router(video.router)
    app.include_router(vision.router)
    app.include_router(vectors.router)
    app.include_router(uploads.router)
    app.include_router(storage.router)
    app.include_router(status.router)
    if services is not None:
        app.state.services = services
    return app
