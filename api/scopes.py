"""The route → scope table: which key scope every authenticated operation requires.

One table, keyed by operation id (``video_process``), drives the check in :mod:`api.deps`, the
``x-required-scope`` of each operation in the OpenAPI document and the README's table; a route with
security but no entry here makes :func:`check_table` fail at app creation, so a new route cannot ship
unguarded. The rules (VideoVector's where it has the route): vision POSTs, video process, creates
and updates → write; GETs and streams → read; vector search → search; destructive DELETEs and key
management → admin. Aborting an upload destroys nothing stored, so it is write like the upload;
webhook CRUD (its DELETE too: a subscription, not stored data) is write, as the issue pins it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from fastapi.routing import APIRoute

from contract.errors import ErrorCode, VisionGridError
from contract.keys import Scope, granted

__all__ = ["ROUTE_SCOPES", "check_table", "operation_id", "require", "require_scope"]

_S, _R, _W, _A = Scope.SEARCH, Scope.READ, Scope.WRITE, Scope.ADMIN

ROUTE_SCOPES: Final[dict[str, Scope]] = {
    # video tasks
    "video_process": _W,
    "video_list_tasks": _R,
    "video_get_task": _R,
    "video_stream": _R,
    "video_results": _R,
    "video_annotated": _R,
    "video_cancel": _W,
    "video_delete_task": _A,
    # synchronous vision and batches
    "vision_detect": _W,
    "vision_ocr": _W,
    "vision_describe": _W,
    "vision_list_models": _R,
    "vision_create_batch": _W,
    "vision_get_batch": _R,
    "vision_cancel_batch": _W,
    "vision_delete_batch": _A,
    # vectors
    "vectors_models": _R,
    "vectors_create_collection": _W,
    "vectors_list_collections": _R,
    "vectors_get_collection": _R,
    "vectors_delete_collection": _A,
    "vectors_index_items": _W,
    "vectors_list_items": _R,
    "vectors_delete_items": _A,
    "vectors_search": _S,
    # storage
    "storage_upload": _W,
    "storage_presign": _W,
    "storage_list_files": _R,
    "storage_get_file": _R,
    "storage_delete_file": _A,
    "storage_create_upload": _W,
    "storage_put_chunk": _W,
    "storage_get_upload": _R,
    "storage_finalize_upload": _W,
    "storage_abort_upload": _W,
    # status
    "status_status": _R,
    "status_latency": _R,
    "status_capacity": _R,
    # webhooks and the lifecycle events stream
    "webhooks_list_events": _R,
    "webhooks_create_webhook": _W,
    "webhooks_list_webhooks": _R,
    "webhooks_get_webhook": _R,
    "webhooks_update_webhook": _W,
    "webhooks_delete_webhook": _W,
    "webhooks_rotate_secret": _W,
    "webhooks_test_webhook": _W,
    "webhooks_list_deliveries": _R,
    "webhooks_retry_delivery": _W,
    "events_stream_events": _R,
    # keys
    "keys_create_key": _A,
    "keys_list_keys": _A,
    "keys_get_key": _A,
    "keys_delete_key": _A,
    "keys_rotate_key": _A,
    "keys_revoke_key": _A,
}


def operation_id(route: APIRoute) -> str:
    """``video_process``, ``vectors_search``: short, unique names a generated client's functions take."""
    return f"{route.tags[0]}_{route.name}" if route.tags else route.name


def require(route: APIRoute | None, scopes: tuple[str, ...]) -> None:
    """Raise 403 ``insufficient_scope`` unless ``scopes`` grant what ``route`` requires."""
    if route is None:
        return  # not a matched route (the 404 path): nothing to guard
    needed = ROUTE_SCOPES.get(operation_id(route))
    if needed is None:
        raise RuntimeError(f"route {operation_id(route)!r} has no entry in api.scopes.ROUTE_SCOPES")
    require_scope(scopes, needed)


def require_scope(scopes: tuple[str, ...], needed: Scope) -> None:
    """Raise 403 ``insufficient_scope`` unless ``scopes`` grant ``needed`` (REST routes and MCP tools)."""
    if not granted(scopes, needed):
        raise VisionGridError(
            ErrorCode.INSUFFICIENT_SCOPE,
            f"this key's scopes {list(scopes)} do not include {needed.value!r} (admin > write > read > search)",
            required_scope=needed.value,
        )


def check_table(operation_ids: Iterable[str]) -> None:
    """Every authenticated operation has a scope and every entry names an operation (raises otherwise)."""
    present = set(operation_ids)
    missing = sorted(present - ROUTE_SCOPES.keys())
    stale = sorted(ROUTE_SCOPES.keys() - present)
    if missing or stale:
        raise RuntimeError(f"api.scopes.ROUTE_SCOPES is out of date: missing {missing}, unknown {stale}")
