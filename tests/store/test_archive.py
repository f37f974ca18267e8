"""Archive: exact bytes, byte offsets, reads from anywhere (mid-event included), isolation, deletion."""

from __future__ import annotations

import pickle
import random
import threading

import pytest

from contract.errors import VisionGridError
from store.archive import Archive, ArchiveTaskMissingError
from store.tasks import TaskStore


def _event(rng: random.Random, index: int) -> bytes:
    payload = "".join(rng.choice('abcé€😀{}":,') for _ in range(rng.randint(0, 300)))
    return f"id: {index}\ndata: {payload}\n\n".encode()


def test_append_returns_end_offsets_and_size(tasks: TaskStore, archive: Archive) -> None:
    task = tasks.create("p", {}, None)
    assert archive.size(task.id) == 0
    assert archive.read(task.id) == b""
    assert archive.append(task.id, b"id: 10\n\n") == 8
    assert archive.append(task.id, b"data: x\n\n") == 17
    assert archive.size(task.id) == 17
    assert archive.read(task.id) == b"id: 10\n\ndata: x\n\n"
    assert archive.append(task.id, b"") == 17  # nothing stored
    assert archive.size(task.id) == 17


def test_read_from_random_offsets_matches_the_concatenation(tasks: TaskStore, archive: Archive) -> None:
    rng = random.Random(1234)
    task = tasks.create("p", {}, None)
    stream = b""
    for index in range(60):
        event = _event(rng, index)
        stream += event
        assert archive.append(task.id, event) == len(stream)
    assert archive.size(task.id) == len(stream)
    assert archive.read(task.id) == stream
    offsets = [0, 1, len(stream) - 1, len(stream), len(stream) + 1, len(stream) + 1000]
    offsets += [rng.randrange(len(stream)) for _ in range(200)]
    for offset in offsets:
        assert archive.read(task.id, offset) == stream[offset:], offset


def test_read_at_every_event_boundary_and_inside(tasks: TaskStore, archive: Archive) -> None:
    task = tasks.create("p", {}, None)
    events = [b"a" * 5, b"b" * 1, b"c" * 7]
    for event in events:
        archive.append(task.id, event)
    stream = b"".join(events)
    for offset in range(len(stream) + 2):
        assert archive.read(task.id, offset) == stream[offset:]


def test_negative_offset_is_an_error(tasks: TaskStore, archive: Archive) -> None:
    task = tasks.create("p", {}, None)
    archive.append(task.id, b"x")
    with pytest.raises(ValueError):
        archive.read(task.id, -1)


@pytest.mark.parametrize("offset", [2**63 - 1, 2**63, 2**64, 10**40])
def test_offset_beyond_int64_reads_nothing(tasks: TaskStore, archive: Archive, offset: int) -> None:
    task = tasks.create("p", {}, None)
    archive.append(task.id, b"x")
    assert archive.read(task.id, offset) == b""


def test_missing_task_error_is_a_visiongrid_not_found() -> None:
    error = ArchiveTaskMissingError("vt_gone")
    assert isinstance(error, VisionGridError) and isinstance(error, LookupError)
    assert error.code == "not_found" and str(error) == "vt_gone" and error.task_id == "vt_gone"
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is ArchiveTaskMissingError and copy.code == "not_found" and copy.task_id == "vt_gone"


def test_tasks_are_isolated_and_delete_clears_one(tasks: TaskStore, archive: Archive) -> None:
    a = tasks.create("p", {}, None)
    b = tasks.create("q", {}, None)
    archive.append(a.id, b"aaa")
    archive.append(b.id, b"bb")
    archive.append(a.id, b"A")
    assert archive.read(a.id) == b"aaaA" and archive.read(b.id) == b"bb"
    archive.delete(a.id)
    assert archive.size(a.id) == 0 and archive.read(a.id) == b""
    assert archive.read(b.id) == b"bb"
    assert tasks.get_any(a.id) is not None  # the task itself stays
    assert archive.append(a.id, b"new") == 3  # a fresh archive starts at 0 again


def test_append_to_missing_task_fails(tasks: TaskStore, archive: Archive) -> None:
    with pytest.raises(ArchiveTaskMissingError):
        archive.append("vt_missing", b"data")
    task = tasks.create("p", {}, None)
    archive.append(task.id, b"one")
    tasks.delete("p", task.id)
    with pytest.raises(ArchiveTaskMissingError):
        archive.append(task.id, b"two")
    assert archive.size(task.id) == 0


def test_read_while_appending_is_always_a_prefix(tasks: TaskStore, archive: Archive) -> None:
    """A live reader polling from its offset only ever sees whole appended bytes, in order."""

    task = tasks.create("p", {}, None)
    rng = random.Random(7)
    events = [_event(rng, i) for i in range(80)]
    stream = b"".join(events)
    done = threading.Event()

    def writer() -> None:
        for event in events:
            archive.append(task.id, event)
        done.set()

    thread = threading.Thread(target=writer)
    thread.start()
    received = b""
    while True:
        finished = done.is_set()
        received += archive.read(task.id, len(received))
        assert stream.startswith(received)
        if finished:
            break
    thread.join()
    assert received == stream
