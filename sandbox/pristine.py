"""The pristine image: QuickJS initialised and bootstrapped, before any user code.

Every new sandbox is a copy of it (~0.4 ms) instead of initialising QuickJS and compiling the
bootstrap again (~10 ms). It is made once per process, or read from the module cache
directory, where it is stored beside the compiled module with a checksum: like that cache, a
missing, corrupt or unwritable entry only costs time.
"""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path

from sandbox.errors import ImageError
from sandbox.guest import guest_sha256
from sandbox.guest_setup import SETUP_REVISION, bootstrap_source
from sandbox.image import decode_image, encode_image
from sandbox.instance import GuestInstance
from sandbox.log import get_logger
from sandbox.memory_layout import MemoryImage
from sandbox.module_cache import cache_dir, mark_used, prune_stale

log = get_logger("sandbox.pristine")

# Not a secret: the entry is a cache, trusted as much as the compiled module beside it. The
# MAC only makes corruption detectable with the same code that checks signed images.
_CACHE_KEY = b"vm-system pristine image cache"


class _SetupHooks:
    """Nothing runs under limits while the pristine image is made, and nothing prints."""

    def interrupt(self, stack_pointer: int) -> bool:
        return False

    def deadline(self) -> bool:
        return False

    def dropped_job(self, memory_bytes: int) -> bool:
        return False

    def console(self, level: int, text_bytes: int) -> bool:
        return False

    def console_text(self, level: int, text: str) -> None:
        return None

    def call(self, slot: int, args_json: str, ident: int) -> None:
        return None

    def bridge(self, op: int, a: int | str | None, b: int | str | None,
               c: int | str | None) -> None:
        return None

    def resolve_module(self, specifier: str, referrer: str) -> tuple[bool, str]:
        return False, f"could not load module '{specifier}'"

    def load_module(self, name: str) -> tuple[bool, str]:
        return False, f"could not load module '{name}'"


_pristine: MemoryImage | None = None
_lock = threading.Lock()


def _entry() -> Path:
    material = (guest_sha256().encode() + hashlib.sha256(bootstrap_source()).digest()
                + f"setup={SETUP_REVISION}".encode())
    return cache_dir() / f"pristine-{hashlib.sha256(material).hexdigest()[:40]}.img"


def _load(path: Path) -> MemoryImage | None:
    try:
        image = decode_image(path.read_bytes(), guest_sha256(), _CACHE_KEY)
        mark_used(path)
        return image
    except FileNotFoundError:
        return None
    except (OSError, ImageError) as exc:
        log.warning("pristine_cache_entry_rejected", path=str(path), error=str(exc))
        return None


def _store(path: Path, image: MemoryImage) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = path.with_name(f".tmp-{os.getpid()}-{threading.get_ident()}-{path.name}")
        tmp.write_bytes(encode_image(image, guest_sha256(), _CACHE_KEY))
        os.replace(tmp, path)
        prune_stale(path)
    except OSError as exc:
        log.warning("pristine_cache_write_failed", path=str(path), error=str(exc))


def pristine_image() -> MemoryImage:
    global _pristine
    with _lock:
        if _pristine is None:
            path = _entry()
            image = _load(path)
            if image is None:
                setup = GuestInstance(_SetupHooks(), 64 * 1024 * 1024)
                try:
                    image = setup.capture()
                finally:
                    setup.close()
                _store(path, image)
            _pristine = image
        return _pristine
