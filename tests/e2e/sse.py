"""A minimal SSE reader for the tests: raw bytes in, (end_offset, id, data) events out."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

EVENT_END = re.compile(rb"\r\n\r\n|\n\n|\r\r")


@dataclass
class Event:
    end: int  # byte offset just after this event in the bytes parsed
    id: str | None
    data: str
    comment: bool

    def json(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.data)
        return parsed


def parse(raw: bytes, base: int = 0) -> list[Event]:
    events: list[Event] = []
    position = 0
    for match in EVENT_END.finditer(raw):
        block = raw[position : match.start()].decode()
        position = match.end()
        lines = block.splitlines()
        if all(line.startswith(":") for line in lines):
            events.append(Event(base + position, None, "", True))
            continue
        ident = next((line[3:].strip() for line in lines if line.startswith("id:")), None)
        data = "\n".join(line[5:].lstrip() for line in lines if line.startswith("data:"))
        events.append(Event(base + position, ident, data, False))
    return events


def without_comments(raw: bytes) -> bytes:
    """The archived bytes of a stream body: keep-alive comment blocks removed."""
    return re.sub(rb"(?m)^:[^\n]*\n\n", b"", raw)
