"""Opening a supervisor (supervisor/boot.py): one set of options, one key beside the database,
one factory for either supervisor."""

from __future__ import annotations

from pathlib import Path

import pytest

from supervisor import Supervisor, default_db_path, open_supervisor
from supervisor.boot import BootConfig, key_path
from supervisor.shards import ShardedSupervisor


def test_the_key_lives_beside_the_database(tmp_path: Path) -> None:
    assert key_path(tmp_path / "data" / "vm.db") == tmp_path / "data" / "vm.db.key"


def test_the_default_database_is_vm_system_db_or_the_user_data_directory(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("VM_SYSTEM_DB", str(tmp_path / "chosen.db"))
    assert default_db_path() == tmp_path / "chosen.db"
    monkeypatch.delenv("VM_SYSTEM_DB")
    assert default_db_path().name == "vm-system.db"


def test_options_default_as_both_supervisors_had_them(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    config = BootConfig.of("vm.db")
    assert (config.db_path, config.library_dir, config.image_key, config.run_root,
            config.image_interval) == (Path("vm.db"), None, None, tmp_path, 0.2)
    resolved = BootConfig.of("vm.db", library_dir="libs", run_root=".").resolved()
    assert (resolved.db_path, resolved.library_dir, resolved.run_root) == (
        tmp_path / "vm.db", tmp_path / "libs", tmp_path)


@pytest.mark.parametrize("implementation", [Supervisor, ShardedSupervisor], ids=lambda c: c.__name__)
def test_an_unknown_option_is_refused_not_ignored(implementation: type, tmp_path: Path) -> None:
    extra = {"workers": 1} if implementation is ShardedSupervisor else {}
    with pytest.raises(TypeError, match="image_intervall"):
        implementation.open(tmp_path / "vm.db", image_intervall=0.1, **extra)


def test_one_key_file_signs_the_images_of_either_supervisor(tmp_path: Path) -> None:
    db = tmp_path / "vm.db"
    with open_supervisor(db) as sup:
        assert isinstance(sup, Supervisor)
    key = key_path(db).read_bytes()
    assert key_path(db).stat().st_mode & 0o777 == 0o600
    with open_supervisor(db, workers=1, log_level="warning") as sharded:
        assert isinstance(sharded, ShardedSupervisor)
    assert key_path(db).read_bytes() == key
