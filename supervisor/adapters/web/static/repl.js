// A session's REPL: Enter runs, Shift+Enter adds a line, ↑/↓ walk the inputs run before.
// Each input is sent as a streamed REPL request, so its console lines appear as the script
// prints them; the session's earlier executions are shown above, oldest first.
import { get, streamPost } from "./api.js";
import { fill, h, shortId, statusBadge, time } from "./dom.js";
import { executionBlock } from "./events.js";
import { closeSession } from "./sessions.js";
import { button, errorBox, errorText, heading, link } from "./ui.js";

const HISTORY_SHOWN = 20;

async function showStored(transcript, execution) {
  const block = executionBlock(execution.id, `execution ${shortId(execution.id)}`);
  transcript.append(block);
  for (const event of await get(`/executions/${execution.id}/events`)) block.add(event);
  if (execution.status !== "running") block.finish(execution);
  return block;
}

export async function replPage(main, [id], _query, signal) {
  const enc = encodeURIComponent(id);
  let session = await get(`/sessions/${enc}`);
  const executions = await get(`/executions?session_id=${enc}&limit=${HISTORY_SHOWN}`);
  const transcript = h("div", { class: "transcript", id: "transcript", role: "log", "aria-live": "polite",
    "aria-label": "Transcript" });
  const editor = h("textarea", { id: "repl-input", class: "editor", rows: 3, spellcheck: "false",
    autocomplete: "off", "aria-label": "JavaScript input: Enter runs, Shift+Enter adds a line, Up and Down walk the history" });
  const state = h("span", { id: "repl-state", class: "muted", role: "status" });
  const badge = h("span", { id: "session-status" }, statusBadge(session.status));
  const history = executions.filter((e) => e.kind === "repl" && typeof e.input === "string").map((e) => e.input).reverse();
  let cursor = history.length;
  let draft = "";
  let running = false;

  const setSession = (s) => {
    session = s;
    badge.replaceChildren(statusBadge(s.status));
    editor.disabled = s.status !== "ready";
    if (s.status !== "ready") state.textContent = `The session is ${s.status}: it runs nothing more.`;
  };

  const run = async () => {
    const input = editor.value;
    if (running || !input.trim() || session.status !== "ready") return;
    running = true;
    history.push(input);
    cursor = history.length;
    draft = "";
    editor.value = "";
    state.textContent = "running…";
    const block = executionBlock(null, "execution");
    transcript.append(block);
    block.scrollIntoView({ block: "end" });
    try {
      const executionId = await streamPost("/executions/repl", { session_id: id, input }, {
        signal,
        onStart: (eid) => block.setId(eid),
        onEvent: (event) => {
          block.add(event);
          block.scrollIntoView({ block: "end" });
        },
      });
      const execution = await get(`/executions/${executionId}`);
      block.finish(execution);
      state.textContent = `${execution.status} · ${time(execution.ended_at)}`;
    } catch (error) {
      if (signal.aborted) return;
      block.fail(errorText(error));
      state.textContent = "";
    } finally {
      running = false;
    }
    setSession(await get(`/sessions/${enc}`));
    if (!signal.aborted) editor.focus();
  };

  editor.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      run();
      return;
    }
    const before = editor.value.slice(0, editor.selectionStart);
    const after = editor.value.slice(editor.selectionEnd);
    if (event.key === "ArrowUp" && !before.includes("\n") && cursor > 0) {
      event.preventDefault();
      if (cursor === history.length) draft = editor.value;
      editor.value = history[--cursor];
    } else if (event.key === "ArrowDown" && !after.includes("\n") && cursor < history.length) {
      event.preventDefault();
      cursor += 1;
      editor.value = cursor === history.length ? draft : history[cursor];
      editor.selectionStart = editor.selectionEnd = editor.value.length;
    }
  });

  const close = button("Close session", async () => {
    try {
      setSession(await closeSession(id));
    } catch (error) {
      state.replaceChildren(errorBox(error));
    }
  }, { id: "close-session", class: "danger" });

  fill(main, 
    heading(`Session ${shortId(id)}`, badge, h("div", { class: "actions" }, close)),
    h("p", { class: "muted" }, "Template ", link(`#/templates/${session.template_id}`, shortId(session.template_id)),
      " · worktree ", h("code", {}, session.worktree_path), " · created ", time(session.created_at)),
    session.last_error ? h("p", { class: "error" }, session.last_error) : null,
    transcript,
    h("div", { class: "repl-bar" }, editor, h("div", { class: "repl-actions" },
      button("Run", run, { class: "primary", id: "repl-run" }), state,
      h("small", { class: "muted" }, "Enter runs · Shift+Enter new line · ↑/↓ history"))),
  );
  for (const execution of executions.slice().reverse()) {
    const block = await showStored(transcript, execution);
    block.prepend(h("div", { class: "block-head" }, link(`#/executions/${execution.id}`, `${execution.kind} ${shortId(execution.id)}`),
      " ", time(execution.started_at)));
  }
  setSession(session);
  transcript.scrollTop = transcript.scrollHeight;
  if (session.status === "ready") editor.focus();
}
