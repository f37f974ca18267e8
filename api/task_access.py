"""Enqueue, get, cancel and delete a task of one kind.

Video tasks (``vt_``) and image batches (``ib_``) share the durable queue, and each is reachable only
under its own routes: another kind's id, like another project's, is a plain 404.
"""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool

from api.errors import not_found
from api.services import Services
from contract.webhooks import WebhookConfig
from store import media
from store.records import TaskKind, TaskRecord

__all__ = ["cancel_task", "delete_task", "enqueue", "get_task"]

_NOUN = {TaskKind.VIDEO: "task", TaskKind.IMAGE_BATCH: "batch"}


async def enqueue(
    services: Services,
    project: str,
    kind: TaskKind,
    request: dict[str, Any],
    model: str | None,
    staged: list[str],
    deadline: tuple[float | None, float | None] = (None, None),
    webhook: WebhookConfig | None = None,
) -> TaskRecord:
    """Store a validated request as a ``pending`` task and nudge a worker to claim it now. ``deadline``:
    (seconds of processing allowed, seconds asked), from :func:`api.deadlines.deadline_of`; ``webhook``:
    the request's own webhook (its URL already checked), stored with the task."""
    hook = (webhook.url, webhook.secret) if webhook is not None else None
    task = await run_in_threadpool(services.tasks.create, project, request, model, staged, kind, deadline, hook)
    if services.wake_workers is not None:
        services.wake_workers()
    return task


async def get_task(services: Services, project: str, task_id: str, kind: TaskKind) -> TaskRecord:
    task = await run_in_threadpool(services.tasks.get, project, task_id) if kind.owns(task_id) else None
    if task is None:
        raise not_found(_NOUN[kind], task_id)
    return task


async def cancel_task(services: Services, project: str, task_id: str, kind: TaskKind) -> TaskRecord:
    """Running → ``cancelling`` (the runner stops at its next chunk or image); pending → ``cancelled``."""
    task = await run_in_threadpool(services.tasks.request_cancel, project, task_id) if kind.owns(task_id) else None
    if task is None:
        raise not_found(_NOUN[kind], task_id)
    return task


async def delete_task(services: Services, project: str, task_id: str, kind: TaskKind) -> None:
    """Delete the task, its archive and results, and its staged media; a running runner stops writing."""
    task = await run_in_threadpool(services.tasks.delete, project, task_id) if kind.owns(task_id) else None
    if task is None:
        raise not_found(_NOUN[kind], task_id)
    await run_in_threadpool(media.delete_staged, list(task.staged_media), services.settings, project)
