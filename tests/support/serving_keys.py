"""API and operator keys for servers under test: real keys, digest files, the env to use them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from artpulse_runtime.server.auth import hash_key, mint_key


@dataclass(frozen=True)
class Keys:
    """A client key and an operator key, and the server environment that accepts them."""

    client: str
    admin: str
    env: dict[str, str]


def write_keys(folder: Path) -> Keys:
    """Mint one client and one operator key; write their digest files under ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    client, admin = mint_key(), mint_key()
    client_file, admin_file = folder / "api-keys", folder / "admin-keys"
    client_file.write_text(
        f"# clients\n{hash_key(mint_key())}  retired-client\n\n{hash_key(client)}  tests\n"
    )
    admin_file.write_text(f"{hash_key(admin)}  operator\n")
    env = {
        "ARTPULSE_API_KEYS_FILE": str(client_file),
        "ARTPULSE_ADMIN_KEYS_FILE": str(admin_file),
    }
    return Keys(client, admin, env)
