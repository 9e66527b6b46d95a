// One execution: its fields, its events (followed live while it runs) and its outcome.
import { follow, get } from "./api.js";
import { fill, h, shortId, statusBadge, time } from "./dom.js";
import { executionBlock } from "./events.js";
import { heading, link } from "./ui.js";

export async function executionPage(main, [id], _query, signal) {
  const enc = encodeURIComponent(id);
  const execution = await get(`/executions/${enc}`);
  const block = executionBlock(execution.id, `execution ${shortId(execution.id)}`);
  const facts = [
    ["Kind", execution.kind], ["Started", time(execution.started_at)], ["Ended", time(execution.ended_at)],
    ["Path", execution.path], ["Session state", execution.session_state ? execution.session_state.state : null],
    ["Error", execution.error ? `${execution.error.kind}: ${execution.error.name}: ${execution.error.message}` : null],
  ].filter(([, v]) => v !== null && v !== undefined && v !== "");
  fill(main, 
    heading(`Execution ${shortId(id)}`, statusBadge(execution.status)),
    execution.session_id
      ? h("p", {}, "Session ", link(`#/sessions/${execution.session_id}`, shortId(execution.session_id)))
      : h("p", { class: "muted" }, "A one-shot run"),
    h("dl", { class: "facts" }, facts.map(([k, v]) => [h("dt", {}, k), h("dd", {}, String(v))])),
    h("h2", {}, "Events"), h("div", { class: "transcript" }, block));
  if (execution.status === "running") {
    await follow(id, (event) => block.add(event), signal);
    block.finish(await get(`/executions/${enc}`));
  } else {
    for (const event of await get(`/executions/${enc}/events`)) block.add(event);
    block.finish(execution);
  }
}
