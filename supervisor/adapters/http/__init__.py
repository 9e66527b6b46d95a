"""The HTTP server: the REST API of docs/api.md (`app`), its middleware, request and response
shapes, error envelope, event streams, and the daemon that serves it (`server`).

Nothing is imported here: the CLI imports `server` for `vm-system serve`'s options and errors,
and must not pay for FastAPI on `vm-system --help`."""
