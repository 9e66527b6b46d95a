// One execution's events and outcome as lines of a transcript. Every payload field is shown
// as text (dom.js): console output, previews and messages come from the script.
import { h, statusBadge } from "./dom.js";

const LIMIT_STATUSES = new Set(["timeout", "limit_exceeded"]);

export function eventLine(event) {
  const p = event.payload || {};
  const line = (cls, ...parts) => h("div", { class: `line ${cls}`, "data-type": event.type, "data-seq": event.seq }, ...parts);
  switch (event.type) {
    case "input_echo":
      return line("echo", h("span", { class: "prompt", "aria-hidden": "true" }, "› "), h("pre", {}, p.text));
    case "console":
      return line(`console level-${p.level}`, h("span", { class: "tag" }, p.level), h("pre", {}, p.text));
    case "value":
      return line("value", h("span", { class: "tag" }, p.type), h("pre", {}, p.preview));
    case "exception":
      return line("exception", h("span", { class: "tag" }, "exception"),
        h("pre", {}, `Uncaught ${p.name}: ${p.message}`, p.stack ? "\n" + p.stack : ""));
    case "limit": {
      const l = p.limit || {};
      return line("limit", h("span", { class: "tag" }, "limit stop"),
        h("pre", {}, `${p.message}${l.name ? ` (${l.name}: limit ${l.value}, used ${l.used})` : ""}`));
    }
    case "host_call":
      return line("host", h("span", { class: "tag" }, "host call"),
        h("pre", {}, `${p.name} ${p.ok ? "ok" : "failed"} in ${p.ms} ms${p.error ? ": " + p.error : ""}`));
    case "system":
      return line("system", h("span", { class: "tag" }, p.level || "system"), h("pre", {}, p.message));
    default:
      return line("other", h("span", { class: "tag" }, event.type), h("pre", {}, JSON.stringify(p)));
  }
}

export function outcomeClass(status) {
  if (status === "running") return "running";
  if (LIMIT_STATUSES.has(status)) return "limit";
  if (status === "crashed") return "crashed";
  if (status === "ok") return "ok";
  return status === "error" ? "error" : "muted";
}

export function metricsLine(execution) {
  const m = execution.metrics || {};
  const parts = [];
  if (m.wall_ms !== undefined) parts.push(`wall ${Number(m.wall_ms).toFixed(1)} ms`);
  if (m.cpu_ms !== undefined) parts.push(`cpu ${Number(m.cpu_ms).toFixed(1)} ms`);
  if (m.peak_memory_bytes) parts.push(`memory ${(m.peak_memory_bytes / 1048576).toFixed(2)} MiB`);
  if (m.events !== undefined) parts.push(`${m.events} events`);
  if (m.output_bytes !== undefined) parts.push(`${m.output_bytes} B out`);
  if (m.host_calls) parts.push(`${m.host_calls} host calls`);
  const error = execution.error;
  return h("div", { class: "metrics" }, statusBadge(execution.status),
    error && execution.status === "crashed" ? h("span", { class: "crash" }, ` ${error.message}`) : null,
    h("span", {}, " " + parts.join(" · ")));
}

// A block for one execution: its lines (appended as they arrive) and, when it ended, its status
// and metrics. `block.add(event)` and `block.finish(execution)`.
export function executionBlock(executionId, label) {
  const lines = h("div", { class: "lines" });
  const foot = h("div", { class: "foot" }, statusBadge("running"));
  const block = h("section", { class: "execution state-running", "data-execution": executionId || "", "aria-label": label || "execution" },
    lines, foot);
  const seen = new Set();
  block.setId = (id) => { block.dataset.execution = id; };
  block.add = (event) => {
    if (seen.has(event.seq)) return;
    seen.add(event.seq);
    lines.append(eventLine(event));
  };
  block.finish = (execution) => {
    block.className = `execution state-${outcomeClass(execution.status)}`;
    block.dataset.status = execution.status;
    foot.replaceChildren(metricsLine(execution));
  };
  block.fail = (text) => {
    block.className = "execution state-crashed";
    foot.replaceChildren(h("span", { class: "error" }, text));
  };
  return block;
}
