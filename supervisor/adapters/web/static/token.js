// The daemon's bearer token, asked for when the API answers 401 and kept in this tab's
// session storage only (never in local storage, cookies or the URL).
import { h } from "./dom.js";

const KEY = "vm-system.token";
let asking = null;

export function token() {
  return sessionStorage.getItem(KEY);
}

export function forgetToken() {
  sessionStorage.removeItem(KEY);
}

// Resolves with the token the user typed; concurrent callers share one prompt.
export function askToken(refused) {
  if (asking) return asking;
  asking = new Promise((resolve) => {
    const input = h("input", { type: "password", name: "token", id: "token-input", autocomplete: "off",
      required: true, "aria-describedby": "token-help" });
    const form = h("form", { class: "dialog", id: "token-form", "aria-labelledby": "token-title" },
      h("h2", { id: "token-title" }, "This daemon needs a token"),
      h("p", { id: "token-help" }, refused
        ? "The token was refused. Enter the token the daemon was started with (serve --token)."
        : "Enter the token the daemon was started with (serve --token). It is kept for this tab only."),
      h("label", { for: "token-input" }, "Token"), input,
      h("div", { class: "actions" }, h("button", { type: "submit", class: "primary" }, "Continue")));
    const overlay = h("div", { class: "overlay", role: "dialog", "aria-modal": "true" }, form);
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      sessionStorage.setItem(KEY, input.value);
      overlay.remove();
      asking = null;
      resolve(input.value);
    });
    document.body.append(overlay);
    input.focus();
  });
  return asking;
}
