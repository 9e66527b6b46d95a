"""The `vm-system` command line: `main` parses and dispatches, one module per command group.

Nothing is imported here: `vm-system --help` must stay cheap (tests/cli check what it imports)."""
