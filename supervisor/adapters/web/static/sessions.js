// Sessions: the list (filtered by status), creating one from a template, closing.
import { get, post } from "./api.js";
import { fill, h, shortId, statusBadge, time } from "./dom.js";
import { apiForm, button, errorBox, field, heading, link, table } from "./ui.js";

const STATUSES = ["", "starting", "ready", "crashed", "closed"];

export async function closeSession(id) {
  return post(`/sessions/${encodeURIComponent(id)}/close`);
}

export async function sessionsPage(main, _params, query) {
  const status = STATUSES.includes(query.get("status") || "") ? query.get("status") || "" : "";
  const [sessions, templates] = await Promise.all([
    get(status ? `/sessions?status=${status}` : "/sessions"), get("/templates")]);
  const names = new Map(templates.map((t) => [t.id, t.name]));
  const filter = h("select", { id: "status-filter", "aria-label": "Filter by status",
    onchange: (e) => { location.hash = e.target.value ? `#/sessions?status=${e.target.value}` : "#/sessions"; } },
  STATUSES.map((s) => h("option", { value: s }, s || "all statuses")));
  filter.value = status;
  const create = apiForm({ id: "session-create", class: "inline", "aria-label": "Create a session" }, [
    field("Template", "template_id", { tag: "select", required: true, selectedValue: query.get("template") || undefined,
      options: templates.map((t) => h("option", { value: t.id }, t.name)) }),
    field("Worktree path (absolute, on the daemon's host)", "worktree_path", { required: true, placeholder: "/srv/work" }),
    field("Workspace id", "workspace_id", { value: "console" }),
    field("Base commit", "base_commit_oid", { value: "HEAD" }),
  ], "Create session", async (v) => {
    const session = await post("/sessions", v);
    location.hash = `#/sessions/${session.id}`;
  });
  const rows = sessions.slice().sort((a, b) => (a.created_at < b.created_at ? 1 : -1));
  fill(main, heading("Sessions", h("label", { class: "filter" }, "Status ", filter)),
    templates.length ? create : h("p", { class: "muted" }, "Create a template first: ", link("#/templates", "templates")),
    table([
      { title: "Session", cell: (s) => link(`#/sessions/${s.id}`, shortId(s.id), { "data-session": s.id }) },
      { title: "Status", cell: (s) => statusBadge(s.status) },
      { title: "Template", cell: (s) => names.get(s.template_id) || shortId(s.template_id) },
      { title: "Worktree", cell: (s) => h("code", {}, s.worktree_path) },
      { title: "Created", cell: (s) => time(s.created_at) },
      { title: "", cell: (s) => (s.status === "ready" ? button("Close", async (event) => {
        event.target.disabled = true;
        try {
          await closeSession(s.id);
          await sessionsPage(main, _params, query);
        } catch (error) {
          event.target.replaceWith(errorBox(error));
        }
      }, { class: "small", "aria-label": `Close session ${shortId(s.id)}` }) : s.last_error ? h("span", { class: "error" }, s.last_error) : "") },
    ], rows, status ? `No ${status} sessions.` : "No sessions yet."));
}
