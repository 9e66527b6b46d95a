// The REST API (docs/api.md) as the console uses it: JSON in and out, the bearer token on
// every request, an error envelope as an ApiError, event streams read with fetch (an
// EventSource cannot send the token).
import { askToken, token } from "./token.js";

const PREFIX = "/api/v1";

export class ApiError extends Error {
  constructor(status, code, message, details) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details || {};
  }

  // The field the error is about (`limits.cpu_ms`, `name`), when it names one.
  get field() {
    if (typeof this.details.field === "string") return this.details.field;
    const first = Array.isArray(this.details.errors) ? this.details.errors[0] : null;
    if (first && typeof first.field === "string") return first.field.replace(/^body\./, "");
    return null;
  }
}

function headers(extra) {
  const all = { ...extra };
  const t = token();
  if (t !== null) all.authorization = `Bearer ${t}`;
  return all;
}

// fetch, asking for the token again while the daemon answers 401.
async function authorized(path, init) {
  let refused = false;
  for (;;) {
    const response = await fetch(PREFIX + path, { ...init, headers: headers(init.headers) });
    if (response.status !== 401) return response;
    await askToken(refused || token() !== null);
    refused = true;
  }
}

async function failure(response) {
  let body = null;
  try {
    body = await response.json();
  } catch {
    // not the envelope: reported by its status below
  }
  const error = body && body.error ? body.error : {};
  return new ApiError(response.status, error.code || "HTTP_" + response.status,
    error.message || `the daemon answered ${response.status}`, error.details);
}

export async function call(method, path, body) {
  const init = { method, headers: {} };
  if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers["content-type"] = "application/json";
  }
  const response = await authorized(path, init);
  if (!response.ok) throw await failure(response);
  return response.json();
}

export const get = (path) => call("GET", path);
export const post = (path, body) => call("POST", path, body === undefined ? {} : body);
export const patch = (path, body) => call("PATCH", path, body);
export const del = (path) => call("DELETE", path);

// Parses a text/event-stream body, calling onEvent(event) for each frame's data (the event).
async function readEvents(response, onEvent, signal) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let end;
      while ((end = buffer.search(/\r?\n\r?\n/)) !== -1) {
        const frame = buffer.slice(0, end);
        buffer = buffer.slice(end).replace(/^\r?\n\r?\n/, "");
        const data = frame.split(/\r?\n/).filter((l) => l.startsWith("data:"))
          .map((l) => l.slice(5).replace(/^ /, "")).join("\n");
        if (data) onEvent(JSON.parse(data));
      }
      if (signal && signal.aborted) break;
    }
  } finally {
    reader.releaseLock();
  }
}

// POSTs `body` asking for the stream (`/executions/repl`, `/run`); onStart(executionId) as soon
// as the execution exists, onEvent for each event as it is recorded. Resolves with the id once
// the terminal event arrived.
export async function streamPost(path, body, { onStart, onEvent, signal } = {}) {
  const response = await authorized(path, {
    method: "POST", body: JSON.stringify(body), signal,
    headers: { "content-type": "application/json", accept: "text/event-stream" },
  });
  if (!response.ok) throw await failure(response);
  const location = response.headers.get("location") || "";
  const id = location.slice(location.lastIndexOf("/") + 1);
  if (onStart) onStart(id);
  await readEvents(response, onEvent || (() => {}), signal);
  return id;
}

// Follows a stored or running execution's events (GET …/events/stream).
export async function follow(executionId, onEvent, signal) {
  const response = await authorized(`/executions/${encodeURIComponent(executionId)}/events/stream`,
    { method: "GET", signal, headers: { accept: "text/event-stream" } });
  if (!response.ok) throw await failure(response);
  await readEvents(response, onEvent, signal);
}
