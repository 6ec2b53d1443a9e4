"""Cross-site request forgery: every form and script carries a token bound to the session; a
request to change something without it, or with another session's, is refused. The session
cookie is SameSite=strict as well, but a token does not depend on the browser getting that right."""

import hmac
import secrets
from collections.abc import MutableMapping

FIELD = "csrf"  # the form field
HEADER = "X-CSRF-Token"  # or this header, from scripts


class CsrfError(Exception):
    """The request's token is missing or is not this session's."""


def token(session: MutableMapping) -> str:
    """This session's token, made on first use."""
    if FIELD not in session:
        session[FIELD] = secrets.token_urlsafe(32)
    return session[FIELD]


def check(session: MutableMapping, sent: str | None) -> None:
    expected = session.get(FIELD)
    if not expected or not sent or not hmac.compare_digest(expected.encode(), sent.encode()):
        raise CsrfError("cross-site request refused: the form's token does not match your session "
                        "(reload the page and try again)")
