"""Get, cancel and delete a task of one kind: video tasks (``vt_``) and image batches (``ib_``) share
the durable queue, and each is reachable only under its own routes (another kind's id, like another
project's, is a plain 404)."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool

from api.errors import not_found
from api.services import Services
from store import media
from store.records import TaskRecord

__all__ = ["cancel_task", "delete_task", "get_task"]


async def get_task(services: Services, project: str, task_id: str, *, prefix: str, noun: str) -> TaskRecord:
    task = await run_in_threadpool(services.tasks.get, project, task_id) if task_id.startswith(prefix) else None
    if task is None:
        raise not_found(noun, task_id)
    return task


async def cancel_task(services: Services, project: str, task_id: str, *, prefix: str, noun: str) -> TaskRecord:
    """Running → ``cancelling`` (the runner stops at its next chunk or image); pending → ``cancelled``."""
    if not task_id.startswith(prefix):
        raise not_found(noun, task_id)
    task = await run_in_threadpool(services.tasks.request_cancel, project, task_id)
    if task is None:
        raise not_found(noun, task_id)
    return task


async def delete_task(services: Services, project: str, task_id: str, *, prefix: str, noun: str) -> None:
    """Delete the task, its archive and results, and its staged media; a running runner stops writing."""
    if not task_id.startswith(prefix):
        raise not_found(noun, task_id)
    task = await run_in_threadpool(services.tasks.delete, project, task_id)
    if task is None:
        raise not_found(noun, task_id)
    await run_in_threadpool(media.delete_staged, list(task.staged_media), services.settings, project)
