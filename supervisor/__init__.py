"""The domain: templates, sessions, the execution pipeline, limits policy, and the adapters
(CLI, HTTP, daemon) in `supervisor.adapters`, which import the core and are never imported by
it."""
