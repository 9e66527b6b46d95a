// The console's router: `#/page/arg?query` → a page function that fills <main>. Each page
// gets an AbortSignal that fires when the user navigates away (its streams and timers stop).
import { fill, h } from "./dom.js";
import { executionPage } from "./execution.js";
import { replPage } from "./repl.js";
import { runPage } from "./run.js";
import { runtimePage } from "./runtime.js";
import { sessionsPage } from "./sessions.js";
import { templatePage, templatesPage } from "./templates.js";
import { errorBox } from "./ui.js";

const ROUTES = [
  [/^\/templates$/, templatesPage, "templates"],
  [/^\/templates\/([^/]+)$/, templatePage, "templates"],
  [/^\/sessions$/, sessionsPage, "sessions"],
  [/^\/sessions\/([^/]+)$/, replPage, "sessions"],
  [/^\/executions\/([^/]+)$/, executionPage, "sessions"],
  [/^\/run$/, runPage, "run"],
  [/^\/runtime$/, runtimePage, "runtime"],
];

const main = document.getElementById("main");
let current = null;

async function route() {
  if (current) current.abort();
  const controller = new AbortController();
  current = controller;
  const raw = location.hash.replace(/^#/, "") || "/sessions";
  const [path, search] = raw.split("?", 2);
  const query = new URLSearchParams(search || "");
  for (const link of document.querySelectorAll("header nav a")) {
    link.toggleAttribute("aria-current", false);
  }
  for (const [pattern, page, section] of ROUTES) {
    const match = pattern.exec(path);
    if (!match) continue;
    const nav = document.querySelector(`header nav a[href="#/${section}"]`);
    if (nav) nav.setAttribute("aria-current", "page");
    main.setAttribute("aria-busy", "true");
    try {
      await page(main, match.slice(1).map(decodeURIComponent), query, controller.signal);
    } catch (error) {
      if (!controller.signal.aborted) fill(main, errorBox(error));
    } finally {
      if (current === controller) main.removeAttribute("aria-busy");
    }
    return;
  }
  fill(main, h("h1", {}, "Not found"), h("p", {}, "No page at ", h("code", {}, raw), "."));
}

// A client-side route typed as a path (`/sessions`) becomes the same route after the `#`.
if (!location.hash && location.pathname !== "/") {
  history.replaceState(null, "", "/#" + location.pathname + location.search);
}
window.addEventListener("hashchange", route);
// The first page is on the screen and usable: what benchmarks/console.py measures to.
route().then(() => performance.mark("console-ready"));
