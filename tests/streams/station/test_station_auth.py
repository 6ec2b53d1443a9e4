"""Operators' passwords and identities (streams/station/auth.py) and CSRF tokens (csrf.py)."""

import pytest

from latentline.streams.station import csrf
from latentline.streams.station.auth import (
    Auth,
    AuthError,
    add_user,
    check_password,
    hash_password,
    read_users,
)


def test_a_password_hash_checks_that_password_only():
    stored = hash_password("correct horse")
    assert stored.startswith("scrypt$") and "correct horse" not in stored
    assert check_password("correct horse", stored)
    assert not check_password("correct hors", stored)
    assert hash_password("correct horse") != stored  # salted
    assert not check_password("x", "plain-text") and not check_password("x", "md5$a$b$c$d$e")


def test_the_users_file_is_written_and_read_back(tmp_path):
    path = tmp_path / "station" / "users"
    add_user(path, "op-1", "first-password")
    add_user(path, "op-2", "second-password")
    add_user(path, "op-1", "new-password")  # a reset replaces the line
    users = read_users(path)
    assert sorted(users) == ["op-1", "op-2"] and check_password("new-password", users["op-1"])
    with pytest.raises(ValueError, match="operator names"):
        add_user(path, "op 3", "password")


@pytest.mark.parametrize("line", ["op-1 scrypt$1", "op-1:plain", "bad name:scrypt$1$1$1$a$b"])
def test_a_malformed_users_file_says_where(tmp_path, line):
    path = tmp_path / "users"
    path.write_text(f"# operators\n\n{line}\n")
    with pytest.raises(ValueError, match=r"users:3: expected operator:scrypt"):
        read_users(path)


def test_sign_in_with_the_users_file(tmp_path):
    path = tmp_path / "users"
    add_user(path, "op-1", "first-password")
    auth = Auth("password", path, "X-Forwarded-User")
    assert auth.sign_in("op-1", "first-password") == "op-1"
    for name, password in (("op-1", "wrong"), ("op-2", "first-password"), ("", "")):
        with pytest.raises(AuthError, match="unknown operator or wrong password"):
            auth.sign_in(name, password)
    with pytest.raises(AuthError):  # no file: nobody signs in
        Auth("password", tmp_path / "missing", "X").sign_in("op-1", "first-password")


@pytest.mark.parametrize("value", [None, "", "op 1", "a" * 65, "op-1\nX-Other: y"])
def test_the_proxy_header_must_name_an_operator(value):
    with pytest.raises(AuthError, match="X-Forwarded-User"):
        Auth("header", None, "X-Forwarded-User").from_header(value)


def test_csrf_tokens_belong_to_their_session():
    session, other = {}, {}
    mine = csrf.token(session)
    assert csrf.token(session) == mine and len(mine) > 30
    csrf.check(session, mine)
    for sent in (None, "", csrf.token(other), mine[:-1]):
        with pytest.raises(csrf.CsrfError):
            csrf.check(session, sent)
    with pytest.raises(csrf.CsrfError):
        csrf.check({}, mine)  # a session that never had one
