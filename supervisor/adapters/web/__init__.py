"""The web console: a single-page UI over the REST API, served by the daemon next to it.

`assets` loads the console's static files (ES modules, CSS, `index.html`) shipped as package
data, `headers` sets the security headers every console answer carries, and `app` serves them
and routes every path outside `/api/` to the console. The console talks to the daemon only
through the public REST API (docs/api.md), as any client does.

Nothing is imported here: the daemon imports `app` when it starts.
"""
