"""Who is signed in: an operator with a password from the users file, or whoever a trusted reverse
proxy names in a header. Passwords are kept as scrypt hashes (the standard library's), never in clear."""

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

# scrypt's cost: n=2**14, r=8 (16 MiB, some tens of ms): slow to guess, quick enough to sign in.
N, R, P = 2**14, 8, 1
OPERATOR = re.compile(r"[A-Za-z0-9._@-]{1,64}")  # a name that is safe in a label and a log line


class AuthError(Exception):
    """Not signed in, a wrong password, or no identity from the proxy."""


def hash_password(password: str, salt: bytes | None = None) -> str:
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=N, r=R, p=P, maxmem=64 * 2**20)
    encode = base64.b64encode
    return f"scrypt${N}${R}${P}${encode(salt).decode()}${encode(digest).decode()}"


def check_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        computed = hashlib.scrypt(password.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r),
                                  p=int(p), maxmem=64 * 2**20)
    except ValueError:
        return False
    return hmac.compare_digest(computed, base64.b64decode(digest))


def read_users(path: Path) -> dict[str, str]:
    """``operator:hash`` lines; blank lines and ``#`` comments are skipped."""
    users = {}
    for number, line in enumerate(Path(path).read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, stored = line.partition(":")
        if not sep or not OPERATOR.fullmatch(name) or not stored.startswith("scrypt$"):
            raise ValueError(f"{path}:{number}: expected operator:scrypt$... (latentline station --add-user)")
        users[name] = stored
    return users


def add_user(path: Path, name: str, password: str) -> None:
    """Adds or replaces an operator in the users file."""
    if not OPERATOR.fullmatch(name):
        raise ValueError(f"operator names are 1-64 letters, digits and . _ @ -, not {name!r}")
    users = read_users(path) if Path(path).exists() else {}
    users[name] = hash_password(password)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text("".join(f"{n}:{h}\n" for n, h in sorted(users.items())))


@dataclass(frozen=True)
class Auth:
    """mode "password": users from the file, re-read at each sign-in (no restart to add one);
    mode "header": the proxy in front authenticates, and names the operator in ``header``."""

    mode: str
    users_file: Path
    header: str

    def sign_in(self, name: str, password: str) -> str:
        users = read_users(self.users_file) if self.users_file.exists() else {}
        # A wrong name costs as much as a wrong password: the timing tells nothing.
        stored = users.get(name) or hash_password("", b"\0" * 16)
        if name not in users or not check_password(password, stored):
            raise AuthError("unknown operator or wrong password")
        return name

    def from_header(self, value: str | None) -> str:
        if not value or not OPERATOR.fullmatch(value):
            raise AuthError(f"no valid operator name in the {self.header} header from the proxy")
        return value
