"""The README's quick start runs as written, on a fresh checkout's layout, against the real service:
the bash block between the ``quickstart`` markers with ``set -euo pipefail``, then the Python
example after it. Only where it runs differs: a directory with the checkout's ``.venv`` and
``.cache/media``, and a ``.data/first-key.txt`` written the way ``scripts/run.sh`` writes it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from pathlib import Path

from store.db import open_engine
from store.keys import KeyStore
from tests.e2e.conftest import Service

ROOT = Path(__file__).resolve().parents[2]


def _blocks() -> tuple[str, str]:
    readme = (ROOT / "README.md").read_text()
    marked = readme.split("<!-- quickstart:begin -->", 1)[1].split("<!-- quickstart:end -->", 1)
    bash = re.search(r"```bash\n(.*?)```", marked[0], re.S)
    python = re.search(r"```python\n(.*?)```", marked[1], re.S)
    assert bash is not None and python is not None
    return bash.group(1), python.group(1)


def test_the_readme_quick_start_runs_verbatim(service: Service, media_dir: Path, tmp_path: Path) -> None:
    bash, python = _blocks()
    (tmp_path / ".venv").symlink_to(Path(sys.executable).parent.parent)
    (tmp_path / ".cache").mkdir()
    (tmp_path / ".cache" / "media").symlink_to(media_dir)
    (tmp_path / ".data").mkdir()
    project = f"quickstart-{uuid.uuid4().hex[:8]}"  # a project of its own, as a fresh install's "default" is
    _, secret = KeyStore(open_engine(service.settings.resolved_database_url())).create(project, ("admin",))
    key_file = f"project: {project}\nkey id:  k\nscopes:  admin\nsecret:  {secret}\n"
    (tmp_path / ".data" / "first-key.txt").write_text(key_file)
    env = {**os.environ, "VISIONGRID_URL": service.base_url}
    env.pop("VISIONGRID_API_KEY", None)
    done = subprocess.run(
        ["bash", "-c", "set -euo pipefail\n" + bash], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    out = done.stdout
    assert "person" in out, "the submit's track table and the raw-body task's results"
    assert "data: [DONE]" in out, "the SSE stream ran to its end"
    assert '"vision.detect"' in out and "dog" in out
    assert re.search(r"│ a\s+│", out), "the text search found the fire engine first"
    env["VISIONGRID_API_KEY"] = secret
    ran = subprocess.run(
        [sys.executable, "-c", python], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
    assert ran.returncode == 0, ran.stdout[-3000:] + ran.stderr[-3000:]
    assert "TrackSummary" in ran.stdout and "person" in ran.stdout
