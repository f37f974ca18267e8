// The playground: sign in with a key, analyse a video (upload or URL) and watch its detections drawn
// over it as the SSE stream arrives, manage tasks, try the image endpoints, search a collection.
import { ApiError, call, key, stream, upload } from "./api.js";
import { Overlay, colour } from "./overlay.js";

const $ = (id) => document.getElementById(id);
const state = { task: null, abort: null, frame: [0, 0], stats: { reconnects: 0, chunks: 0 }, results: new Map() };
window.playground = state; // what the browser tests read (chunks, reconnects), never needed by a person

function say(element, text, error = false) {
  element.textContent = text;
  element.classList.toggle("error", error);
}

function failed(element) {
  return (error) => say(element, error instanceof ApiError ? error.message : String(error), true);
}

// --- sign in and tabs ------------------------------------------------------------------------------

async function signIn(event) {
  event?.preventDefault();
  if (event) key.set($("key").value.trim());
  if (!key.get()) return;
  try {
    const status = await call("GET", "/v1/status");
    say($("who"), `project ${status.project ?? ""} · ${status.tasks?.running ?? 0} running`.trim());
    document.body.dataset.signedIn = "true";
    refreshTasks();
    loadCollections();
  } catch (error) {
    failed($("who"))(error);
  }
}

for (const button of document.querySelectorAll("nav button")) {
  button.addEventListener("click", () => {
    for (const other of document.querySelectorAll("nav button")) other.setAttribute("aria-pressed", String(other === button));
    for (const section of document.querySelectorAll("main > section")) section.hidden = section.id !== `tab-${button.dataset.tab}`;
    if (button.dataset.tab === "tasks") refreshTasks();
    if (button.dataset.tab === "search") loadCollections();
  });
}

// --- a video task --------------------------------------------------------------------------------

const overlay = new Overlay($("overlay"), $("video"));

function request(url) {
  const steps = [...document.querySelectorAll("input[name=step]:checked")].map((box) => box.value);
  const classes = $("classes").value.split(",").map((c) => c.trim()).filter(Boolean);
  const when = $("when").value.split(",").map((c) => c.trim()).filter(Boolean);
  return {
    input: [{ type: "video_url", url, sampling: { mode: "fps", value: Number($("fps").value) || 5 } }],
    steps: steps.map((model) => ({
      model,
      ...(model === "detect" && classes.length ? { parameters: { classes } } : {}),
      ...(model !== "detect" && when.length ? { when: { class_is: when } } : {}),
    })),
    output: { track_previews: true, annotated_video: $("annotated").checked },
  };
}

async function analyse(event) {
  event.preventDefault();
  const status = $("submit-status");
  try {
    let url = $("url").value.trim();
    const file = $("file").files[0];
    if (file) {
      const bar = $("upload-progress");
      bar.hidden = false;
      const done = await upload(`playground/${file.name}`, file, (sent, total) => (bar.value = (100 * sent) / total));
      url = done.storage_url;
      $("video").src = URL.createObjectURL(file);
    } else if (url.startsWith("http")) {
      $("video").src = url;
    }
    const created = await call("POST", "/v1/video/process", request(url));
    say(status, `task ${created.id}`);
    watch(created.id);
  } catch (error) {
    failed(status)(error);
  }
}

function draw() {
  const video = $("video");
  const [width, height] = state.frame[0] ? state.frame : [video.videoWidth, video.videoHeight];
  overlay.draw(width, height);
  requestAnimationFrame(draw);
}

async function watch(taskId) {
  state.abort?.abort();
  state.abort = new AbortController();
  state.task = taskId;
  state.stats = { reconnects: 0, chunks: 0 };
  state.frames = [];
  overlay.reset();
  $("tracks").replaceChildren();
  $("descriptions").replaceChildren();
  $("video").play().catch(() => {}); // a source the browser cannot play leaves the boxes on black
  const line = $("stream-status");
  try {
    await stream(taskId, (chunk) => {
      if (chunk.finish_reason === null) state.frames.push(chunk.stream_info.frame_index);
      if (chunk.stream_info.width) state.frame = [chunk.stream_info.width, chunk.stream_info.height];
      overlay.add(chunk);
      const described = chunk.delta?.results?.[0]?.description;
      if (described) {
        const item = document.createElement("li");
        item.textContent = `${(described.start_ms / 1000).toFixed(1)}–${(described.end_ms / 1000).toFixed(1)} s: ${described.text}`;
        $("descriptions").append(item);
      }
      const info = chunk.stream_info;
      say(line, `${info.decoded_frames}${info.total_frames ? `/${info.total_frames}` : ""} frames · ${state.stats.reconnects} reconnects` +
        (chunk.finish_reason ? ` · ${chunk.finish_reason}` : ""), Boolean(chunk.error));
    }, state.stats, state.abort.signal);
    state.done = true;
    showTracks(taskId);
  } catch (error) {
    if (!state.abort.signal.aborted) failed(line)(error);
  }
}

async function showTracks(taskId) {
  let result;
  try {
    result = await call("GET", `/v1/video/tasks/${taskId}/results`);
  } catch {
    return; // a failed or cancelled task has no results; its stream said why
  }
  state.results.set(taskId, result);
  const cards = result.tracks.map((track) => {
    const card = document.createElement("figure");
    card.className = "track";
    card.style.borderColor = colour(track.track_id);
    if (track.thumbnail_url) {
      const img = document.createElement("img");
      img.src = track.thumbnail_url;
      img.alt = `track ${track.track_id}`;
      img.addEventListener("mouseenter", () => track.preview_url && (img.src = track.preview_url));
      img.addEventListener("mouseleave", () => (img.src = track.thumbnail_url));
      card.append(img);
    }
    const caption = document.createElement("figcaption");
    caption.textContent = `#${track.track_id} ${track.class} · ${track.frames_seen} frames · ${(track.first_timestamp_ms / 1000).toFixed(1)}–${(track.last_timestamp_ms / 1000).toFixed(1)} s`;
    card.append(caption);
    return card;
  });
  $("tracks").replaceChildren(...cards);
  if (result.annotated_video?.url) {
    const link = document.createElement("a");
    link.href = result.annotated_video.url;
    link.textContent = "annotated video";
    $("tracks").append(link);
  }
}

// --- tasks ---------------------------------------------------------------------------------------

async function refreshTasks() {
  const page = await call("GET", "/v1/video/tasks?limit=20").catch(() => ({ data: [] }));
  const rows = page.data.map((task) => {
    const row = document.createElement("tr");
    row.dataset.task = task.id;
    for (const text of [task.id, task.status, task.progress.processed_frames, task.created_at]) {
      const cell = document.createElement("td");
      cell.textContent = text;
      row.append(cell);
    }
    const actions = document.createElement("td");
    for (const [label, action] of [
      ["watch", () => watch(task.id)],
      ["cancel", () => call("POST", `/v1/video/tasks/${task.id}/cancel`).then(refreshTasks)],
      ["delete", () => call("DELETE", `/v1/video/tasks/${task.id}`).then(refreshTasks)],
    ]) {
      const button = document.createElement("button");
      button.textContent = label;
      button.addEventListener("click", action);
      actions.append(button);
    }
    row.append(actions);
    return row;
  });
  $("task-rows").replaceChildren(...rows);
}

// --- one image -----------------------------------------------------------------------------------

async function photo(event) {
  event.preventDefault();
  const file = $("photo").files[0];
  if (!file) return;
  const list = $("image-results");
  const data = await new Promise((resolve) => {
    const reader = new FileReader();
    reader.onload = () => resolve(String(reader.result).split(",", 2)[1]);
    reader.readAsDataURL(file);
  });
  const op = $("image-op").value;
  try {
    const result = await call("POST", `/v1/vision/${op}`, { image: { base64: data } });
    const bitmap = await createImageBitmap(file);
    const canvas = $("image-canvas");
    [canvas.width, canvas.height] = [bitmap.width, bitmap.height];
    const ctx = canvas.getContext("2d");
    ctx.drawImage(bitmap, 0, 0);
    ctx.lineWidth = 3;
    const items = result.targets.map((t, i) => {
      ctx.strokeStyle = colour(i);
      ctx.strokeRect(t.roi.left + 1.5, t.roi.top + 1.5, t.roi.width - 3, t.roi.height - 3);
      const item = document.createElement("li");
      item.textContent = `${t.class} ${t.confidence.toFixed(2)}${t.text ? ` “${t.text}”` : ""}${t.faces?.length ? ` · ${t.faces.length} faces` : ""}`;
      return item;
    });
    if (result.description) {
      const item = document.createElement("li");
      item.textContent = result.description.text ?? JSON.stringify(result.description);
      items.push(item);
    }
    list.replaceChildren(...items);
  } catch (error) {
    const item = document.createElement("li");
    failed(item)(error);
    list.replaceChildren(item);
  }
}

$("drop").addEventListener("dragover", (event) => event.preventDefault());
$("drop").addEventListener("drop", (event) => {
  event.preventDefault();
  $("photo").files = event.dataTransfer.files;
  $("image-form").requestSubmit();
});

// --- search --------------------------------------------------------------------------------------

async function loadCollections() {
  const page = await call("GET", "/v1/vectors/collections").catch(() => ({ data: [] }));
  const select = $("collection");
  const chosen = select.value; // a reload keeps what the user picked
  select.replaceChildren(...page.data.map((c) => new Option(`${c.name} (${c.model})`, c.id)));
  if (page.data.some((c) => c.id === chosen)) select.value = chosen;
}

async function thumbnailOf(hit) {
  const { task_id: taskId, track_id: trackId } = hit.metadata;
  if (!taskId || trackId === undefined) return null;
  if (!state.results.has(taskId)) state.results.set(taskId, await call("GET", `/v1/video/tasks/${taskId}/results`).catch(() => null));
  return state.results.get(taskId)?.tracks.find((t) => t.track_id === trackId)?.thumbnail_url ?? null;
}

async function search(event) {
  event.preventDefault();
  try {
    const found = await call("POST", `/v1/vectors/collections/${$("collection").value}/search`, { text_query: $("query").value, top_k: 10 });
    const items = await Promise.all(found.data.map(async (hit) => {
      const item = document.createElement("li");
      const src = await thumbnailOf(hit);
      if (src) {
        const img = document.createElement("img");
        img.src = src;
        img.alt = hit.id;
        img.height = 64;
        item.append(img);
      }
      item.append(`${hit.id} · ${hit.score.toFixed(3)}${hit.text ? ` · ${hit.text}` : ""}`);
      return item;
    }));
    $("hits").replaceChildren(...items);
  } catch (error) {
    const item = document.createElement("li");
    failed(item)(error);
    $("hits").replaceChildren(item);
  }
}

$("signin").addEventListener("submit", signIn);
$("submit").addEventListener("submit", analyse);
$("refresh").addEventListener("click", refreshTasks);
$("image-form").addEventListener("submit", photo);
$("search-form").addEventListener("submit", search);
requestAnimationFrame(draw);
signIn();
