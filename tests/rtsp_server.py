"""A real RTSP server on loopback for the live-input tests: GStreamer's RTSP server (Debian's
``gstreamer1.0-rtsp`` + ``gir1.2-gst-rtsp-server-1.0``) playing a real clip in real time, H.264.

Run by the system Python (``python3-gi`` lives there, not in the venv):
    /usr/bin/python3 tests/rtsp_server.py CLIP PORT [MOUNT]
The test side is :class:`tests.live.RtspServer`, which starts, kills and restarts it.
"""

from __future__ import annotations

import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402


def main() -> None:
    clip, port = sys.argv[1], sys.argv[2]
    mount = sys.argv[3] if len(sys.argv) > 3 else "/cam"
    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(port)
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(
        f"( filesrc location={clip} ! decodebin ! videoconvert ! videorate ! video/x-raw,framerate=25/1 ! "
        "x264enc tune=zerolatency speed-preset=ultrafast key-int-max=25 ! rtph264pay name=pay0 pt=96 )"
    )
    factory.set_shared(True)
    server.get_mount_points().add_factory(mount, factory)
    server.attach(None)
    print("ready", flush=True)
    GLib.MainLoop().run()


if __name__ == "__main__":
    main()
