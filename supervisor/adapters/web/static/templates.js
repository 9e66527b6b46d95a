// Templates: the list with a create form, and one template's settings and sub-resources.
import { ApiError, del, get, patch, post } from "./api.js";
import { fill, h, time } from "./dom.js";
import { apiForm, button, errorBox, field, heading, link, table } from "./ui.js";

const enc = encodeURIComponent;

export async function templatesPage(main) {
  const templates = await get("/templates");
  const form = apiForm({ id: "template-create", "aria-label": "Create a template", class: "inline" },
    [field("Name", "name", { required: true, placeholder: "demo", autocomplete: "off" })], "Create template",
    async (values) => {
      const created = await post("/templates", { name: values.name });
      location.hash = `#/templates/${created.id}`;
    });
  fill(main, heading("Templates"), form,
    table([
      { title: "Name", cell: (t) => link(`#/templates/${t.id}`, t.name) },
      { title: "Engine", cell: (t) => t.engine },
      { title: "Created", cell: (t) => time(t.created_at) },
    ], templates, "No templates yet: create one above."));
  form.querySelector("input").focus();
}

const LIMIT_FIELDS = [
  ["cpu_ms", "CPU (ms)"], ["wall_ms", "Wall clock (ms)"], ["mem_mb", "Memory (MiB)"],
  ["max_events", "Events"], ["max_output_kb", "Output (KiB)"], ["max_host_calls", "Host calls"],
  ["max_host_in_kb", "Host input (KiB)"], ["max_host_out_kb", "Host output (KiB)"],
];

function settingsForm(id, settings, refresh) {
  const limits = LIMIT_FIELDS.map(([key, label]) => field(label, `limits.${key}`,
    { type: "number", value: String(settings.limits[key] ?? ""), inputmode: "numeric" }));
  const runtime = ["esm", "strict", "console"].map((key) => field(key, `runtime.${key}`,
    { type: "checkbox", checked: Boolean(settings.runtime[key]) }));
  const resolver = settings.resolver || {};
  return apiForm({ id: "settings-form", class: "settings", "aria-label": "Settings" }, [
    h("fieldset", {}, h("legend", {}, "Limits (0: the daemon's ceiling)"), h("div", { class: "grid" }, limits)),
    h("fieldset", {}, h("legend", {}, "Runtime"), h("div", { class: "grid" }, runtime)),
    h("fieldset", {}, h("legend", {}, "Resolver"), h("div", { class: "grid" },
      field("Roots (comma separated)", "resolver.roots", { value: (resolver.roots || []).join(", ") }),
      field("Extensions (comma separated)", "resolver.extensions", { value: (resolver.extensions || []).join(", ") }),
      field("Absolute repository imports", "resolver.allow_absolute_repo_imports",
        { type: "checkbox", checked: Boolean(resolver.allow_absolute_repo_imports) }))),
  ], "Save settings", async (values) => {
    const body = { limits: {}, runtime: {}, resolver: {} };
    for (const [name, value] of Object.entries(values)) {
      const [group, key] = name.split(".");
      if (group === "limits") body.limits[key] = value.trim() === "" ? value : Number(value);
      else if (group === "runtime") body.runtime[key] = value;
      else if (key === "allow_absolute_repo_imports") body.resolver[key] = value;
      else body.resolver[key] = value.split(",").map((s) => s.trim()).filter(Boolean);
    }
    await patch(`/templates/${id}/settings`, body);
    await refresh("Settings saved.");
  });
}

function subsection(title, rows, columns, empty, form) {
  return h("section", { class: "card", "aria-label": title }, h("h2", {}, title), table(columns, rows, empty), form);
}

function removeButton(label, path, refresh) {
  return button("Remove", async (event) => {
    event.target.disabled = true;
    try {
      await del(path);
      await refresh(`${label} removed.`);
    } catch (error) {
      event.target.replaceWith(errorBox(error));
    }
  }, { class: "small", "aria-label": `Remove ${label}` });
}

export async function templatePage(main, [id]) {
  const render = async (notice) => {
    const d = await get(`/templates/${enc(id)}`);
    const refresh = (text) => render(text);
    const base = `/templates/${enc(id)}`;
    fill(main, 
      heading(d.template.name, h("span", { class: "muted" }, ` ${d.template.engine} · ${d.template.id}`),
        h("div", { class: "actions" }, link(`#/sessions?template=${d.template.id}`, "New session", { class: "button" }),
          button("Delete template", async () => {
            await del(base);
            location.hash = "#/templates";
          }, { class: "danger" }))),
      notice ? h("p", { class: "notice", role: "status" }, notice) : null,
      h("section", { class: "card" }, h("h2", {}, "Settings"), settingsForm(id, d.settings, refresh)),
      subsection("Startup files", d.startup_files, [
        { title: "Order", cell: (s) => s.order_index }, { title: "Path", cell: (s) => s.path },
        { title: "Mode", cell: (s) => s.mode },
        { title: "", cell: (s) => removeButton(s.path, `${base}/startup-files/${s.id}`, refresh) },
      ], "No startup files.", apiForm({ id: "startup-form", class: "inline", "aria-label": "Add a startup file" }, [
        field("Path (in the worktree)", "path", { required: true, placeholder: "setup.js" }),
        field("Order", "order_index", { type: "number", value: "0" }),
        field("Mode", "mode", { tag: "select", options: [h("option", { value: "eval" }, "eval"), h("option", { value: "import" }, "import")] }),
      ], "Add startup file", async (v) => {
        await post(`${base}/startup-files`, { path: v.path, order_index: Number(v.order_index || 0), mode: v.mode });
        await refresh("Startup file added.");
      })),
      subsection("Modules", d.modules, [
        { title: "Name", cell: (m) => m.name },
        { title: "", cell: (m) => removeButton(m.name, `${base}/modules/${enc(m.name)}`, refresh) },
      ], "No modules: scripts reach nothing outside.", apiForm({ id: "module-form", class: "inline", "aria-label": "Add a module" }, [
        field("Module", "name", { required: true, placeholder: "fs, database, exec, fetch" }),
      ], "Add module", async (v) => {
        await post(`${base}/modules`, { name: v.name });
        await refresh("Module added.");
      })),
      subsection("Capabilities", d.capabilities, [
        { title: "Kind", cell: (c) => c.kind }, { title: "Name", cell: (c) => c.name },
        { title: "Enabled", cell: (c) => (c.enabled ? "yes" : "no") },
        { title: "Config", cell: (c) => h("code", {}, JSON.stringify(c.config)) },
        { title: "", cell: (c) => removeButton(c.name, `${base}/capabilities/${c.id}`, refresh) },
      ], "No capabilities.", apiForm({ id: "capability-form", class: "inline", "aria-label": "Add a capability" }, [
        field("Kind", "kind", { required: true, placeholder: "fs" }),
        field("Name", "name", { required: true }),
        field("Config (JSON)", "config", { value: "{}" }),
        field("Enabled", "enabled", { type: "checkbox", checked: true }),
      ], "Add capability", async (v) => {
        let config;
        try {
          config = JSON.parse(v.config || "{}");
        } catch {
          throw new ApiError(0, "INVALID_REQUEST", "config is not valid JSON", { field: "config" });
        }
        await post(`${base}/capabilities`, { kind: v.kind, name: v.name, enabled: v.enabled, config });
        await refresh("Capability added.");
      })),
      subsection("Libraries", d.libraries, [
        { title: "Name", cell: (l) => l.name },
        { title: "", cell: (l) => removeButton(l.name, `${base}/libraries/${l.name.split("/").map(enc).join("/")}`, refresh) },
      ], "No libraries.", apiForm({ id: "library-form", class: "inline", "aria-label": "Add a library" }, [
        field("Library", "name", { required: true, placeholder: "lodash@4.17.21" }),
      ], "Add library", async (v) => {
        await post(`${base}/libraries`, { name: v.name });
        await refresh("Library added.");
      })),
    );
  };
  await render();
}
