// The playground's client of the VisionGrid API: the key kept in this tab's session only, errors as
// the API's error objects, the resumable chunked upload, and the SSE stream of a task resumed from
// its byte offset (Last-Event-ID) whenever the connection drops.

const KEY = "visiongrid.key";

export const key = {
  get: () => sessionStorage.getItem(KEY),
  set: (value) => sessionStorage.setItem(KEY, value),
};

export class ApiError extends Error {
  constructor(status, error) {
    super(`${status} ${error.code}: ${error.message}${error.field ? ` (${error.field})` : ""}`);
    this.status = status;
    this.code = error.code;
    this.field = error.field;
  }
}

function headers(extra = {}) {
  return { Authorization: `Bearer ${key.get()}`, ...extra };
}

export async function call(method, path, body) {
  const init = { method, headers: headers() };
  if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers["Content-Type"] = "application/json";
  }
  const response = await fetch(path, init);
  if (response.status === 204) return null;
  const data = await response.json().catch(() => ({ error: { code: "bad_response", message: response.statusText } }));
  if (!response.ok) throw new ApiError(response.status, data.error || { code: "error", message: response.statusText });
  return data;
}

async function sha256(file) {
  const digest = await crypto.subtle.digest("SHA-256", await file.arrayBuffer());
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

function putChunk(url, blob, onBytes) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("PUT", url);
    xhr.setRequestHeader("Authorization", `Bearer ${key.get()}`);
    xhr.setRequestHeader("Content-Type", "application/octet-stream");
    xhr.upload.onprogress = (event) => onBytes(event.loaded);
    xhr.onload = () => (xhr.status < 300 ? resolve() : reject(new ApiError(xhr.status, JSON.parse(xhr.responseText).error)));
    xhr.onerror = () => reject(new Error("the upload connection failed"));
    xhr.send(blob);
  });
}

// Upload `file` to `path` with the resumable chunked upload; progress(sent, total) as bytes go out.
export async function upload(path, file, progress) {
  const created = await call("POST", "/v1/storage/uploads", {
    path, size: file.size, sha256: await sha256(file), content_type: file.type || undefined,
  });
  let done = 0;
  for (let n = 0; n < created.chunks; n++) {
    const blob = file.slice(n * created.chunk_size, (n + 1) * created.chunk_size);
    for (let attempt = 0; ; attempt++) {
      try {
        await putChunk(`/v1/storage/uploads/${created.id}/chunks/${n}`, blob, (bytes) => progress(done + bytes, file.size));
        break;
      } catch (error) {
        if (attempt >= 3 || error instanceof ApiError) throw error;
        await new Promise((r) => setTimeout(r, 500 * 2 ** attempt));
      }
    }
    done += blob.size;
    progress(done, file.size);
  }
  return call("POST", `/v1/storage/uploads/${created.id}/finalize`);
}

// Read a task's SSE stream: onChunk(chunk) per chunk, in order, each once; resumes from the last
// event's id (its byte offset) after a dropped connection. Resolves after [DONE]; stats counts.
export async function stream(taskId, onChunk, stats = { reconnects: 0, chunks: 0 }, signal) {
  let offset = 0;
  for (let failures = 0; ; ) {
    try {
      const extra = offset ? { "Last-Event-ID": String(offset) } : {};
      const response = await fetch(`/v1/video/tasks/${taskId}/stream`, { headers: headers(extra), signal });
      if (!response.ok) throw new ApiError(response.status, (await response.json()).error);
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value;
        let end;
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          let id = null, data = null;
          for (const line of block.split("\n")) {
            if (line.startsWith("id: ")) id = line.slice(4);
            else if (line.startsWith("data: ")) data = line.slice(6);
          }
          if (data === null) continue; // a keep-alive comment
          if (id !== null) offset = Number(id);
          if (data === "[DONE]") return stats;
          stats.chunks++;
          failures = 0;
          onChunk(JSON.parse(data));
        }
      }
    } catch (error) {
      if (error instanceof ApiError || signal?.aborted) throw error;
    }
    failures++;
    stats.reconnects++;
    await new Promise((r) => setTimeout(r, Math.min(5000, 250 * 2 ** Math.min(failures, 5))));
  }
}
