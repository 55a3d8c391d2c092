"""API keys without a server: digest files, constant-time checks, where keys are read from,
and ``artpulse api-key``."""

from __future__ import annotations

import hashlib
import stat
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from artpulse_jobs.cli import main
from artpulse_runtime.server.auth import (
    KeyFileError,
    hash_key,
    load_key_ring,
    mint_key,
    presented_key,
)


def test_a_keys_file_accepts_the_keys_of_its_digests_only(tmp_path: Path) -> None:
    first, second, other = mint_key(), mint_key(), mint_key()
    path = tmp_path / "keys"
    path.write_text(
        f"# operators\n\n{hash_key(first)}  client-a\n   {hash_key(second).upper()}\t# b\n"
    )
    ring = load_key_ring(path)
    assert len(ring.digests) == 2
    assert ring.accepts(first) and ring.accepts(second)
    assert not ring.accepts(other)
    assert not ring.accepts(hash_key(first)), "the digest itself must not work as a key"
    assert not ring.accepts("") and not ring.accepts(None)


def test_sha256sum_output_is_a_valid_line(tmp_path: Path) -> None:
    key = mint_key()
    line = subprocess.run(
        ["sha256sum"], input=key.encode(), capture_output=True, check=True
    ).stdout.decode()
    path = tmp_path / "keys"
    path.write_text(line)
    assert load_key_ring(path).accepts(key)
    assert line.split()[0] == hashlib.sha256(key.encode()).hexdigest()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("ap_a-key-not-a-digest\n", r"keys:1: expected a SHA-256 digest"),
        (f"{'a' * 63}\n", r"keys:1: expected"),
        ("# only comments\n\n", "holds no key digests"),
    ],
)
def test_unusable_keys_files_are_refused_naming_the_line(
    tmp_path: Path, content: str, message: str
) -> None:
    path = tmp_path / "keys"
    path.write_text(content)
    with pytest.raises(KeyFileError, match=message):
        load_key_ring(path)


def test_a_missing_keys_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError, match="cannot read the keys file"):
        load_key_ring(tmp_path / "absent")


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ([("authorization", "Bearer k1")], "k1"),
        ([("authorization", "bearer   k1  ")], "k1"),
        ([("x-api-key", " k2 ")], "k2"),
        ([("authorization", "Basic dXNlcjpwYXNz")], None),
        ([("authorization", "Bearer")], None),
        ([("x-api-key", "")], None),
        ([("content-type", "application/json")], None),
    ],
)
def test_the_key_is_read_from_bearer_or_x_api_key(
    headers: list[tuple[str, str]], expected: str | None
) -> None:
    assert presented_key(headers) == expected
    assert presented_key(dict(headers)) == expected


def test_minted_keys_are_long_random_and_prefixed() -> None:
    keys = {mint_key() for _ in range(100)}
    assert len(keys) == 100
    assert all(key.startswith("ap_") and len(key) >= 40 for key in keys)


def test_api_key_command_prints_the_key_and_its_digest_line() -> None:
    result = CliRunner().invoke(main, ["api-key", "--name", "client-a"])
    assert result.exit_code == 0, result.output
    key, line = result.output.strip().splitlines()
    assert line == f"{hash_key(key)}  client-a"


def test_api_key_command_appends_to_a_private_keys_file(tmp_path: Path) -> None:
    path = tmp_path / "api-keys"
    keys = []
    for name in ("a", "b"):
        result = CliRunner().invoke(main, ["api-key", "--name", name, "--keys-file", str(path)])
        assert result.exit_code == 0, result.output
        keys.append(result.stdout.strip())
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    ring = load_key_ring(path)
    assert all(ring.accepts(key) for key in keys)
    assert not any(key in path.read_text() for key in keys)


def test_api_key_command_refuses_a_name_that_would_break_the_line() -> None:
    result = CliRunner().invoke(main, ["api-key", "--name", "two words"])
    assert result.exit_code == 2 and "--name" in result.output
