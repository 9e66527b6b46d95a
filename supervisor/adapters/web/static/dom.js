// Building the page. Every string becomes a text node or an attribute value: nothing here
// (or anywhere in the console) parses markup, so what a script printed can only ever be shown.

const PROPERTIES = new Set(["value", "checked", "disabled", "selected", "hidden", "type"]);

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") {
      el.addEventListener(key.slice(2), value);
    } else if (key === "class") {
      el.className = value;
    } else if (PROPERTIES.has(key)) {
      el[key] = value;
    } else {
      el.setAttribute(key, value === true ? "" : String(value));
    }
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

// Replaces el's children, skipping null and false (replaceChildren would show them as text).
export function fill(el, ...children) {
  el.replaceChildren();
  return append(el, children);
}

export function clear(el) {
  el.replaceChildren();
  return el;
}

// A form's named fields as strings (checkboxes as booleans).
export function formValues(form) {
  const values = {};
  for (const el of form.elements) {
    if (!el.name) continue;
    values[el.name] = el.type === "checkbox" ? el.checked : el.value;
  }
  return values;
}

export function time(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? String(iso) : d.toLocaleString();
}

// A status as a badge whose class the CSS colours: running, ok, error, limit stop, crashed.
export function statusBadge(status) {
  const kind = {
    running: "running", ok: "ok", ready: "ok", error: "error", crashed: "crashed",
    timeout: "limit", limit_exceeded: "limit", cancelled: "muted", closed: "muted", starting: "running",
  }[status] || "muted";
  return h("span", { class: `badge badge-${kind}`, "data-status": status }, status);
}

export function shortId(id) {
  return id ? String(id).slice(0, 8) : "";
}
