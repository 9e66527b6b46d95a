// A one-shot run: the code in an ephemeral sandbox (POST /run, streamed), with a template's
// settings when one is picked.
import { get, streamPost } from "./api.js";
import { fill, h } from "./dom.js";
import { executionBlock } from "./events.js";
import { apiForm, field, heading, link } from "./ui.js";

export async function runPage(main, _params, _query, signal) {
  const templates = await get("/templates");
  const output = h("div", { class: "transcript", id: "run-output", role: "log", "aria-live": "polite" });
  const form = apiForm({ id: "run-form", "aria-label": "Run a script once" }, [
    field("Code", "code", { tag: "textarea", rows: 8, spellcheck: "false", class: "editor",
      placeholder: "console.log('hello'); 6 * 7" }, "Ctrl+Enter runs"),
    field("Template (its runtime settings, libraries and limits)", "template_id", { tag: "select",
      options: [h("option", { value: "" }, "none"), ...templates.map((t) => h("option", { value: t.id }, t.name))] }),
  ], "Run", async (v) => {
    const block = executionBlock(null, "one-shot run");
    output.replaceChildren(block);
    const body = { code: v.code };
    if (v.template_id) body.template_id = v.template_id;
    const id = await streamPost("/run", body, { signal, onStart: (eid) => block.setId(eid), onEvent: (e) => block.add(e) });
    const execution = await get(`/executions/${id}`);
    block.finish(execution);
    block.append(h("p", {}, link(`#/executions/${id}`, "This run's page")));
  });
  const code = form.querySelector("textarea");
  code.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      form.requestSubmit();
    }
  });
  fill(main, heading("Run once"), form, output);
  code.focus();
}
