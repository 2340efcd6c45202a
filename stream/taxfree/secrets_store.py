"""Local secret files created on first use under CUSTOMS_DATA_DIR/taxfree/ (mode 0600).

With the defaults a worker and the commands run from the same directory find the same files, so
they agree on the keys without any set-up; production points the documented variables
(TAXFREE_ENVIRONMENT in stream/settings.py) at real keys instead.
"""
from __future__ import annotations

import os
from pathlib import Path

from stream.settings import env


def taxfree_dir() -> Path:
    return Path(env("CUSTOMS_DATA_DIR")) / "taxfree"


def default_jwks() -> Path:
    return Path(env("CUSTOMS_TAXFREE_JWKS") or taxfree_dir() / "jwks.json")


def read_or_create(path: Path, make) -> bytes:
    """The bytes of `path`; when it does not exist, `make()` written there first (atomically, 0600)."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    data = make()
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    try:
        os.link(tmp, path)  # fails if another process created it meanwhile: then theirs wins
    except FileExistsError:
        pass
    finally:
        tmp.unlink()
    return path.read_bytes()
