"""Thin adapters over the core, never imported by it: `http` (the REST API and the daemon that
serves it), `cli` (the `vm-system` command line) and `client` (the REST API's HTTP client).
`api_time` is the one time format both the API and the CLI write."""
