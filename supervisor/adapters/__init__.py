"""Thin adapters over the core: the CLI (and, later, the HTTP app and the daemon)."""
