"""The server key: from GATEWAY_SECRET_KEY, or generated once under the data folder, mode 0600."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

import catalog_store
from gateway.keys import MISSING_KEY, load_secret_box
from gateway.settings import Secret, Settings, SettingsError


def test_with_no_key_set_one_is_made_once_with_mode_0600(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    box = load_secret_box(settings)
    path = tmp_path / "data" / "secret.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    text = path.read_text("ascii")
    assert len(catalog_store.parse_key(text)) == 32
    sealed = box.seal(b"psk_x", partner_id=1, key_id="k1")
    again = load_secret_box(settings)  # a later start reads the same key
    assert path.read_text("ascii") == text
    assert again.open(sealed, partner_id=1, key_id="k1") == b"psk_x"


def test_the_environment_key_wins_over_the_file(tmp_path: Path) -> None:
    key = catalog_store.generate_key()
    box = load_secret_box(Settings(data_dir=tmp_path, secret_key=Secret(key)))
    assert not (tmp_path / "secret.key").exists()
    sealed = catalog_store.SecretBox(catalog_store.parse_key(key)).seal(
        b"s", partner_id=1, key_id="k1"
    )
    assert box.open(sealed, partner_id=1, key_id="k1") == b"s"


def test_a_key_file_others_can_read_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "secret.key"
    path.write_text(catalog_store.generate_key())
    os.chmod(path, 0o644)
    with pytest.raises(SettingsError, match=f"^{path} is readable by others \\(mode 0644\\)"):
        load_secret_box(Settings(data_dir=tmp_path))


def test_a_damaged_key_file_is_refused_without_showing_it(tmp_path: Path) -> None:
    path = tmp_path / "secret.key"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, b"c2hvcnQ=\n")
    os.close(fd)
    with pytest.raises(SettingsError) as caught:
        load_secret_box(Settings(data_dir=tmp_path))
    assert (
        str(caught.value)
        == f"{path} must decode to 32 bytes, not 5: it must hold base64 of 32 bytes"
    )


def test_with_a_database_url_no_key_file_is_made_and_the_missing_variable_is_named(
    tmp_path: Path,
) -> None:
    """Two hosts sharing a database must not each make a key of their own."""
    settings = Settings(data_dir=tmp_path, database_url=Secret("postgresql://db/catalog"))
    with pytest.raises(SettingsError) as caught:
        load_secret_box(settings)
    assert str(caught.value) == MISSING_KEY
    assert "GATEWAY_SECRET_KEY" in MISSING_KEY and "partner-gateway key generate" in MISSING_KEY
    assert list(tmp_path.iterdir()) == []


def test_several_keys_newest_first_open_secrets_of_either(tmp_path: Path) -> None:
    old, new = catalog_store.generate_key(), catalog_store.generate_key()
    by_old = catalog_store.SecretBox(catalog_store.parse_key(old)).seal(
        b"s", partner_id=1, key_id="k1"
    )
    box = load_secret_box(Settings(data_dir=tmp_path, secret_key=Secret(f"{new}, {old}")))
    assert box.open(by_old, partner_id=1, key_id="k1") == b"s"
    by_box = box.seal(b"t", partner_id=1, key_id="k2")
    assert (
        catalog_store.SecretBox(catalog_store.parse_key(new)).open(
            by_box, partner_id=1, key_id="k2"
        )
        == b"t"
    )
