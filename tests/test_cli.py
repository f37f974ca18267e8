"""The `visiongrid analyse` command prints tracks, or JSON, and exits 2 on bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from visiongrid.cli import main


def test_analyse_prints_a_track_table(media_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["analyse", str(media_dir / "vtest.avi"), "--max-frames", "6", "--classes", "pedestrian"])
    out = capsys.readouterr().out
    assert code == 0
    assert "6 frames analysed" in out and "finish_reason=max_frames" in out
    assert "pedestrian" in out.splitlines()[2]


def test_analyse_json_follows_the_result_shape(media_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["analyse", str(media_dir / "vtest.avi"), "--max-frames", "4", "--sampling", "interval", "--json"])
    result = json.loads(capsys.readouterr().out)
    assert code == 0
    assert result["usage"]["processed_frames"] == 4
    assert result["stream_info"]["total_frames"] == 795
    assert result["tracks"] and {"track_id", "class", "first_frame", "last_frame"} <= set(result["tracks"][0])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--steps", "detect,teleport"], "unknown step 'teleport'"),
        (["--classes", "dragon"], "unknown class 'dragon'"),
        (["--sampling", "interval", "--value", "0"], "sampling.value"),
    ],
)
def test_bad_input_exits_2_with_a_message(
    media_dir: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    assert main(["analyse", str(media_dir / "vtest.avi"), *args]) == 2
    assert message in capsys.readouterr().err


def test_not_a_video_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"\x00\x01garbage" * 100)
    assert main(["analyse", str(junk)]) == 2
    assert "error" in capsys.readouterr().err


def test_keys_create_prints_a_secret_that_authenticates(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from store.db import open_engine
    from store.keys import KeyStore
    from visiongrid.settings import get_settings

    monkeypatch.setenv("VISIONGRID_DATA_DIR", str(tmp_path))
    get_settings.cache_clear()
    try:
        assert main(["keys", "create", "--project", "acme"]) == 0
        secret = next(line.split()[1] for line in capsys.readouterr().out.splitlines() if line.startswith("secret:"))
        record = KeyStore(open_engine(get_settings().resolved_database_url())).authenticate(secret)
    finally:
        get_settings.cache_clear()
    assert record is not None and record.project == "acme"


def test_keys_create_list_revoke(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from store.db import open_engine
    from store.keys import KeyStore
    from visiongrid.settings import get_settings

    monkeypatch.setenv("VISIONGRID_DATA_DIR", str(tmp_path))
    get_settings.cache_clear()
    try:
        argv = ["keys", "create", "--project", "acme", "--scope", "read", "--scope", "search", "--name", "ci"]
        assert main([*argv, "--expires-in-days", "7"]) == 0
        out = capsys.readouterr().out
        secret = next(line.split()[1] for line in out.splitlines() if line.startswith("secret:"))
        key_id = next(line.split()[2] for line in out.splitlines() if line.startswith("key id:"))
        keys = KeyStore(open_engine(get_settings().resolved_database_url()))
        record = keys.authenticate(secret)
        assert record is not None and record.scopes == ("read", "search") and record.expires_at is not None
        assert main(["keys", "list", "--project", "acme"]) == 0
        listing = capsys.readouterr().out
        assert key_id in listing and secret[-4:] in listing and secret not in listing and "active" in listing
        assert main(["keys", "revoke", "--project", "other", key_id]) == 1  # another project's key
        assert main(["keys", "revoke", "--project", "acme", key_id]) == 0
        assert keys.authenticate(secret) is None
        assert (
            "revoked" in (capsys.readouterr(), main(["keys", "list", "--project", "acme"]), capsys.readouterr().out)[2]
        )
        assert main(["keys", "create", "--project", "acme", "--expires-in-days", "0"]) == 2
    finally:
        get_settings.cache_clear()
