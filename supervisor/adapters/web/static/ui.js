// Widgets the pages share: a page heading, error messages (at the field when the API names
// one), tables, and a form that submits through the API.
import { ApiError } from "./api.js";
import { clear, formValues, h } from "./dom.js";

export function heading(title, ...extra) {
  return h("div", { class: "page-head" }, h("h1", {}, title), ...extra);
}

export function errorText(error) {
  if (error instanceof ApiError) return `${error.code}: ${error.message}`;
  return String(error && error.message ? error.message : error);
}

export function errorBox(error) {
  return h("p", { class: "error", role: "alert" }, errorText(error));
}

export function table(columns, rows, empty) {
  if (!rows.length) return h("p", { class: "muted empty" }, empty);
  return h("div", { class: "table-wrap" }, h("table", {},
    h("thead", {}, h("tr", {}, columns.map((c) => h("th", { scope: "col" }, c.title)))),
    h("tbody", {}, rows.map((row) => h("tr", {}, columns.map((c) => h("td", { "data-label": c.title }, c.cell(row))))))));
}

let fieldCounter = 0;

// A labelled input; `name` is the API field it sets (errors naming it are shown under it).
export function field(label, name, attrs = {}, hint) {
  const id = `f-${name.replace(/[^A-Za-z0-9]/g, "-")}-${++fieldCounter}`;
  const control = attrs.tag === "select" || attrs.tag === "textarea"
    ? h(attrs.tag, { ...attrs, tag: undefined, id, name, "aria-describedby": `${id}-msg` }, attrs.options || [])
    : h("input", { type: "text", ...attrs, id, name, "aria-describedby": `${id}-msg` });
  if (attrs.tag === "select" && attrs.selectedValue !== undefined) control.value = attrs.selectedValue;
  const wrap = h("div", { class: attrs.type === "checkbox" ? "field check" : "field", "data-field": name },
    attrs.type === "checkbox" ? [control, h("label", { for: id }, label)] : [h("label", { for: id }, label), control],
    hint ? h("small", { class: "hint" }, hint) : null,
    h("small", { class: "field-error", id: `${id}-msg`, role: "alert" }));
  return wrap;
}

// A form whose submit calls `action(values)`; an ApiError is shown at the field it names
// (else above the buttons), and the form stays filled in.
export function apiForm(attrs, fields, submitLabel, action) {
  const message = h("p", { class: "error form-error", role: "alert", hidden: true });
  const button = h("button", { type: "submit", class: "primary" }, submitLabel);
  const form = h("form", { ...attrs, novalidate: true }, fields, message, h("div", { class: "actions" }, button));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    showErrors(form, message, null);
    button.disabled = true;
    try {
      await action(formValues(form), form);
    } catch (error) {
      showErrors(form, message, error);
    } finally {
      button.disabled = false;
    }
  });
  return form;
}

function showErrors(form, message, error) {
  for (const wrap of form.querySelectorAll("[data-field]")) {
    wrap.classList.remove("invalid");
    const control = wrap.querySelector("input, select, textarea");
    if (control) control.removeAttribute("aria-invalid");
    clear(wrap.querySelector(".field-error"));
  }
  message.hidden = true;
  clear(message);
  if (!error) return;
  // The field the error names, else a detail named like a field (`{"name": "nonsense"}`).
  const names = error instanceof ApiError ? [error.field, ...Object.keys(error.details)].filter(Boolean) : [];
  const wrap = names.map((name) => findField(form, name)).find(Boolean);
  if (wrap) {
    wrap.classList.add("invalid");
    const control = wrap.querySelector("input, select, textarea");
    control.setAttribute("aria-invalid", "true");
    wrap.querySelector(".field-error").textContent = errorText(error);
    control.focus();
  } else {
    message.textContent = errorText(error);
    message.hidden = false;
  }
}

// The field named `limits.cpu_ms`, or the nearest enclosing one (`config.origins` → `config`).
function findField(form, name) {
  for (let parts = name.split("."); parts.length; parts.pop()) {
    const wanted = parts.join(".");
    const found = [...form.querySelectorAll("[data-field]")].find((el) => el.dataset.field === wanted);
    if (found) return found;
  }
  return null;
}

export function link(href, text, attrs = {}) {
  return h("a", { href, ...attrs }, text);
}

export function button(text, onclick, attrs = {}) {
  return h("button", { type: "button", ...attrs, onclick }, text);
}
