"""Shared benchmark reporting: a markdown table printed and appended to RESULTS.md.

Machines here are shared and noisy, so every table states its baseline row and reports
the other rows as ratios to it, measured in the same run.
"""

from __future__ import annotations

import datetime as dt
import os
import platform
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


def machine_line() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs ({cpu}), Python {platform.python_version()}"
    )


def versions_line(packages: Sequence[str]) -> str:
    found = []
    for name in packages:
        try:
            found.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            found.append(f"{name} (absent)")
    return ", ".join(found)


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def report(
    title: str, headers: Sequence[str], rows: Sequence[Sequence[object]], notes: Sequence[str], packages: Sequence[str]
) -> str:
    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    text = "\n".join(
        [
            f"## {title} — {stamp}",
            "",
            f"Machine: {machine_line()}. Versions: {versions_line(packages)}.",
            "",
            markdown_table(headers, rows),
            "",
            *[f"- {note}" for note in notes],
            "",
        ]
    )
    print(text)
    with RESULTS.open("a") as handle:
        if RESULTS.stat().st_size == 0:
            handle.write("# Benchmark results\n\nAppended by the scripts in this folder; newest last.\n\n")
        handle.write(text + "\n")
    return text
