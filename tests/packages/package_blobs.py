"""What a package store's blob directory holds, for the tests' "nothing was left" checks (a
unique module name: test folders here are not packages)."""

from __future__ import annotations

from pathlib import Path


def blob_files(root: Path) -> list[Path]:
    """Every file under a package store's root (temporary files included)."""
    return sorted(p for p in (root / "sha256").rglob("*") if p.is_file()) if (root / "sha256").exists() else []
