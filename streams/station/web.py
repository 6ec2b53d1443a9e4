"""What every page of the station shares: its configuration, the signed-in operator, the CSRF
check of posted forms, rendering, flash messages and the errors it reports."""

from collections.abc import Callable
from dataclasses import dataclass

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from latentline.streams.station import csrf
from latentline.streams.station.auth import Auth, AuthError


@dataclass(frozen=True)
class StationConfig:
    auth: Auth
    undo_seconds: float
    grafana_url: str
    session_secret: str = ""  # empty: a random one, so sessions end with the process
    ready: Callable[[], bool] = lambda: True  # the feed has caught up with the topics


class BadInput(ValueError):
    """A form field the station cannot use (an invalid type name)."""


class SignInNeeded(Exception):
    """No operator in this session."""


def operator(request: Request) -> str:
    """The signed-in operator: from the session, or from the proxy's header."""
    auth = request.app.state.config.auth
    if auth.mode == "header":
        return auth.from_header(request.headers.get(auth.header))
    name = request.session.get("operator")
    if not name:
        raise SignInNeeded()
    return name


Operator = Depends(operator)


async def checked_form(request: Request) -> dict[str, str]:
    """The posted form, once its CSRF token is this session's (nothing is read before that)."""
    form = await request.form()
    csrf.check(request.session, form.get(csrf.FIELD) or request.headers.get(csrf.HEADER))
    return {key: value for key, value in form.items() if isinstance(value, str)}


def render(request: Request, template: str, status: int = 200, **context) -> HTMLResponse:
    state = request.app.state
    context |= {
        "operator": _operator_or_none(request), "csrf": csrf.token(request.session),
        "open_count": state.db.open_count(), "ready": state.config.ready(),
        "flash": request.session.pop("flash", None), "auth_mode": state.config.auth.mode,
    }
    return state.templates.TemplateResponse(request, template, context, status_code=status)


def flash(request: Request, text: str, answer_id: str | None = None) -> None:
    request.session["flash"] = {"text": text, "answer_id": answer_id}


def redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def _operator_or_none(request: Request) -> str | None:
    try:
        return operator(request)
    except (SignInNeeded, AuthError):
        return None


