"""The pages a person opens: ``/playground`` and the API docs (``/docs`` Swagger UI, ``/redoc``),
served from assets inside the installed packages, so they work on a machine with no internet.

The playground is plain HTML + ES modules + CSS in ``api/static/playground`` (no build step, no
framework: it is ~600 lines and talks to the public ``/v1`` API with the key the user enters, kept
in the tab's ``sessionStorage``). Swagger UI and ReDoc come from the ``fastapi-offline`` wheel's
vendored copies instead of the CDN that FastAPI's defaults load them from.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse
from fastapi.staticfiles import StaticFiles

__all__ = ["install_pages"]

PLAYGROUND = Path(__file__).resolve().parent / "static" / "playground"
_VENDOR = "/static/vendor"

router = APIRouter(include_in_schema=False)


def _vendor_dir() -> Path:
    return Path(str(resources.files("fastapi_offline") / "static"))


@router.get("/playground")
async def playground() -> FileResponse:
    return FileResponse(PLAYGROUND / "index.html", media_type="text/html")


@router.get("/docs")
async def docs() -> HTMLResponse:
    return get_swagger_ui_html(
        openapi_url="/openapi.json",
        title="VisionGrid API",
        swagger_js_url=f"{_VENDOR}/swagger-ui-bundle.js",
        swagger_css_url=f"{_VENDOR}/swagger-ui.css",
        swagger_favicon_url=f"{_VENDOR}/favicon.png",
    )


@router.get("/redoc")
async def redoc() -> HTMLResponse:
    return get_redoc_html(
        openapi_url="/openapi.json",
        title="VisionGrid API",
        redoc_js_url=f"{_VENDOR}/redoc.standalone.js",
        redoc_favicon_url=f"{_VENDOR}/favicon.png",
        with_google_fonts=False,
    )


def install_pages(app: FastAPI) -> None:
    """The playground, the docs pages and their static assets (the app is made with docs_url=None)."""
    app.include_router(router)
    app.mount("/static/playground", StaticFiles(directory=PLAYGROUND), name="playground")
    app.mount(_VENDOR, StaticFiles(directory=_vendor_dir()), name="vendor")
