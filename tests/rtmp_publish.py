"""Publish a real clip to an RTMP server in real time, H.264 in FLV, as a camera or an encoder would:
GStreamer's ``rtmp2sink`` (Debian's ``gstreamer1.0-plugins-bad``), run by the system Python
(``python3-gi`` lives there, not in the venv):

    /usr/bin/python3 tests/rtmp_publish.py CLIP rtmp://127.0.0.1:PORT/live/cam

It prints ``ready`` once the pipeline plays and exits at the end of the clip. The test side is
:class:`tests.live.RtmpServer`.
"""

from __future__ import annotations

import sys

import gi

gi.require_version("Gst", "1.0")
from gi.repository import Gst  # noqa: E402


def main() -> None:
    clip, url = sys.argv[1], sys.argv[2]
    Gst.init(None)
    pipeline = Gst.parse_launch(
        f"filesrc location={clip} ! decodebin ! videoconvert ! videorate ! video/x-raw,framerate=25/1 ! "
        "x264enc tune=zerolatency speed-preset=ultrafast key-int-max=25 ! h264parse ! "
        f"flvmux streamable=true ! rtmp2sink location={url}"
    )
    pipeline.set_state(Gst.State.PLAYING)
    print("ready", flush=True)
    message = pipeline.get_bus().timed_pop_filtered(Gst.CLOCK_TIME_NONE, Gst.MessageType.ERROR | Gst.MessageType.EOS)
    pipeline.set_state(Gst.State.NULL)
    sys.exit(1 if message is not None and message.type == Gst.MessageType.ERROR else 0)


if __name__ == "__main__":
    main()
