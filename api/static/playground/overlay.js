// Boxes, ids and trails drawn over the playing video from the task's chunks: the frame shown is the
// last chunk at or before the video's current time (or, with no playable video, the newest chunk).
// The palette is kernels/draw.py's, so a track has the same colour here and in the annotated MP4.

export const PALETTE = [
  [31, 119, 180], [255, 127, 14], [44, 160, 44], [214, 39, 40], [148, 103, 189], [140, 86, 75],
  [227, 119, 194], [188, 189, 34], [23, 190, 207], [255, 215, 0], [0, 255, 127], [255, 0, 255],
];
const TRAIL = 24;

export function colour(trackId) {
  const [r, g, b] = trackId >= 0 ? PALETTE[trackId % PALETTE.length] : [200, 200, 200];
  return `rgb(${r}, ${g}, ${b})`;
}

export class Overlay {
  constructor(canvas, video) {
    this.canvas = canvas;
    this.video = video;
    this.chunks = [];
    this.size = null; // the source frame's size, from the chunks' ROIs' frame (stream width/height)
  }

  reset() {
    this.chunks = [];
  }

  add(chunk) {
    if (chunk.finish_reason === null && chunk.delta?.results?.length) this.chunks.push(chunk);
  }

  current() {
    if (!this.chunks.length) return -1;
    const playing = this.video.readyState >= 2 && this.video.duration > 0;
    if (!playing) return this.chunks.length - 1;
    const now = this.video.currentTime * 1000 + 1;
    let low = 0, high = this.chunks.length - 1, found = -1;
    while (low <= high) {
      const mid = (low + high) >> 1;
      if (this.chunks[mid].stream_info.timestamp_ms <= now) { found = mid; low = mid + 1; } else high = mid - 1;
    }
    return found;
  }

  draw(frameWidth, frameHeight) {
    const { canvas } = this;
    const shown = this.video.clientWidth ? [this.video.clientWidth, this.video.clientHeight] : [frameWidth, frameHeight];
    if (canvas.width !== shown[0] || canvas.height !== shown[1]) [canvas.width, canvas.height] = shown;
    const ctx = canvas.getContext("2d");
    ctx.clearRect(0, 0, canvas.width, canvas.height);
    const index = this.current();
    if (index < 0 || !frameWidth) return;
    const sx = canvas.width / frameWidth, sy = canvas.height / frameHeight;
    const trails = new Map();
    for (let i = Math.max(0, index - TRAIL); i <= index; i++) {
      for (const t of this.chunks[i].delta.results[0].targets) {
        if (t.track_id < 0) continue;
        if (!trails.has(t.track_id)) trails.set(t.track_id, []);
        trails.get(t.track_id).push([(t.roi.left + t.roi.width / 2) * sx, (t.roi.top + t.roi.height) * sy]);
      }
    }
    ctx.lineWidth = 2;
    for (const [id, points] of trails) {
      ctx.strokeStyle = colour(id);
      ctx.beginPath();
      points.forEach(([x, y], i) => (i ? ctx.lineTo(x, y) : ctx.moveTo(x, y)));
      ctx.stroke();
    }
    ctx.font = "12px system-ui, sans-serif";
    for (const t of this.chunks[index].delta.results[0].targets) {
      const [x, y, w, h] = [t.roi.left * sx, t.roi.top * sy, t.roi.width * sx, t.roi.height * sy];
      ctx.strokeStyle = ctx.fillStyle = colour(t.track_id);
      ctx.lineWidth = 3;
      ctx.strokeRect(x + 1.5, y + 1.5, Math.max(0, w - 3), Math.max(0, h - 3));
      const label = t.track_id >= 0 ? `#${t.track_id} ${t.class}` : t.class;
      const width = ctx.measureText(label).width + 6;
      ctx.fillRect(x, Math.max(0, y - 16), width, 16);
      ctx.fillStyle = "#000";
      ctx.fillText(label, x + 3, Math.max(12, y - 4));
    }
  }
}
