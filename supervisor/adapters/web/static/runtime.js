// The runtime summary (GET /runtime/summary), refreshed while the page is open.
import { get } from "./api.js";
import { fill, h, shortId } from "./dom.js";
import { errorBox, heading, link } from "./ui.js";

const REFRESH_MS = 2000;

function mib(bytes) {
  return bytes === null || bytes === undefined ? "unknown" : `${(bytes / 1048576).toFixed(1)} MiB`;
}

export async function runtimePage(main, _params, _query, signal) {
  const body = h("div", { id: "runtime-summary" });
  fill(main, heading("Runtime"), body);
  const show = async () => {
    try {
      const s = await get("/runtime/summary");
      fill(body, h("dl", { class: "facts" },
        h("dt", {}, "Live sessions"), h("dd", { "data-key": "active_sessions" }, String(s.active_sessions)),
        h("dt", {}, "Executions running"), h("dd", { "data-key": "executions_running" }, String(s.executions_running)),
        h("dt", {}, "Worker threads"), h("dd", {}, String(s.worker_threads)),
        h("dt", {}, "Guest memory"), h("dd", {}, mib(s.memory_bytes)),
        h("dt", {}, "Daemon RSS"), h("dd", {}, mib(s.rss_bytes))),
      s.active_session_ids.length
        ? h("ul", { class: "plain" }, s.active_session_ids.map((id) => h("li", {}, link(`#/sessions/${id}`, shortId(id)))))
        : null);
    } catch (error) {
      fill(body, errorBox(error));
    }
  };
  await show();
  const timer = setInterval(show, REFRESH_MS);
  signal.addEventListener("abort", () => clearInterval(timer));
}
