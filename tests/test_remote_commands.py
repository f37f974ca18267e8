"""Where the remote commands connect: the flag, else the environment, else the config file."""

from __future__ import annotations

import argparse
from pathlib import Path

from visiongrid.remote_commands import _request, connection


def _args(**given: object) -> argparse.Namespace:
    return argparse.Namespace(url=given.get("url"), api_key=given.get("api_key"))


def test_flags_beat_the_environment_which_beats_the_config(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('url = "http://from-config:8080"\napi_key = "vg_config"\n')
    env = {"VISIONGRID_CONFIG": str(config)}
    assert connection(_args(), env) == ("http://from-config:8080", "vg_config")
    env |= {"VISIONGRID_URL": "http://from-env:8080", "VISIONGRID_API_KEY": "vg_env"}
    assert connection(_args(), env) == ("http://from-env:8080", "vg_env")
    assert connection(_args(url="http://flag:1", api_key="vg_flag"), env) == ("http://flag:1", "vg_flag")
    assert connection(_args(), {"VISIONGRID_CONFIG": str(tmp_path / "none.toml")}) == (None, None)


def test_the_request_a_submit_makes() -> None:
    args = argparse.Namespace(
        fps=5.0, max_frames=None, steps=["detect", "feature"], classes=["person"], collection="c1"
    )
    body = _request(args, "storage://uploads/walk.mp4")
    assert body == {
        "input": [
            {"type": "video_url", "url": "storage://uploads/walk.mp4", "sampling": {"mode": "fps", "value": 5.0}}
        ],
        "steps": [
            {"model": "detect", "parameters": {"classes": ["person"]}},
            {"model": "feature", "parameters": {"collection": "c1"}},
        ],
    }
    assert _request(args, "rtsp://cam/1")["input"][0]["type"] == "live"
