"""Sandbox images: bytes and header round trip, latest per session."""

from __future__ import annotations

import hashlib
import os
import uuid

import pytest

from store import ExecutionNotFound, ImageNotFound, InvalidValue, SessionNotFound, Store


def _save(store: Store, session_id: str, data: bytes, **kwargs):
    return store.save_image(
        session_id,
        data,
        format_version=1,
        guest_sha256=hashlib.sha256(b"guest").hexdigest(),
        memory_size=len(data),
        **kwargs,
    )


def test_image_round_trip(store: Store, session, finish) -> None:
    execution = store.create_execution("repl", session_id=session.id, input="1")
    finish(store, execution.id)
    data = os.urandom(256 * 1024)
    info = _save(store, session.id, data, execution_id=execution.id)
    image = store.get_image(info.id)
    assert image.data == data
    assert (image.session_id, image.execution_id, image.size) == (session.id, execution.id, len(data))
    assert (image.format_version, image.memory_size) == (1, len(data))
    assert image.guest_sha256 == hashlib.sha256(b"guest").hexdigest()
    assert image.created_at == info.created_at
    assert store.list_images(session.id) == [info]


def test_latest_image_is_the_newest_even_within_one_microsecond(clocked_store: Store) -> None:
    t = clocked_store.create_template("t")
    session = clocked_store.create_session(t.id, "w", "o", "/p", status="ready")
    assert clocked_store.latest_image(session.id) is None
    for i in range(3):
        _save(clocked_store, session.id, bytes([i]) * 10)
    latest = clocked_store.latest_image(session.id)
    assert latest is not None and latest.data == bytes([2]) * 10
    assert [i.size for i in clocked_store.list_images(session.id)] == [10, 10, 10]


def test_images_are_per_session(store: Store, template) -> None:
    a = store.create_session(template.id, "w", "o", "/p", status="ready")
    b = store.create_session(template.id, "w", "o", "/p", status="ready")
    _save(store, a.id, b"a")
    _save(store, b.id, b"b")
    assert store.latest_image(a.id).data == b"a"
    assert store.latest_image(b.id).data == b"b"


def test_image_references_are_checked(store: Store, session) -> None:
    with pytest.raises(SessionNotFound):
        _save(store, str(uuid.uuid4()), b"x")
    with pytest.raises(ExecutionNotFound):
        _save(store, session.id, b"x", execution_id=str(uuid.uuid4()))
    with pytest.raises(ImageNotFound):
        store.get_image(str(uuid.uuid4()))
    with pytest.raises(InvalidValue):
        store.save_image(session.id, "text", format_version=1, guest_sha256="h", memory_size=1)
    assert store.list_images(session.id) == []


def test_keep_latest_bounds_a_sessions_image_history(store, session) -> None:
    for i in range(5):
        store.save_image(session.id, bytes([i]) * 10, format_version=1, guest_sha256="g",
                         memory_size=65536, keep_latest=2)
    infos = store.list_images(session.id)
    assert len(infos) == 2
    assert store.latest_image(session.id).data == bytes([4]) * 10
