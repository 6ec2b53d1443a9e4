"""Signing in and out (password mode; behind a proxy, the proxy signs operators in)."""

from fastapi import APIRouter, Request
from fastapi.responses import Response

from latentline.streams.station.auth import AuthError
from latentline.streams.station.web import checked_form, redirect, render

router = APIRouter()


def _local(target: str | None) -> str:
    """Only a path on this station: a sign-in link must not send anyone elsewhere."""
    return target if target and target.startswith("/") and not target.startswith("//") else "/queue"


@router.get("/login")
def login_page(request: Request, next: str = "/queue") -> Response:
    if request.app.state.config.auth.mode == "header":
        return redirect(_local(next))
    return render(request, "login.html", next=_local(next), error=None)


@router.post("/login")
async def login(request: Request) -> Response:
    form = await checked_form(request)
    auth = request.app.state.config.auth
    target = _local(form.get("next"))
    try:
        name = auth.sign_in(form.get("operator", "").strip(), form.get("password", ""))
    except AuthError as exc:
        return render(request, "login.html", status=401, next=target, error=str(exc))
    request.session.clear()  # a fresh session (and CSRF token) for the signed-in operator
    request.session["operator"] = name
    return redirect(target)


@router.post("/logout")
async def logout(request: Request) -> Response:
    await checked_form(request)
    request.session.clear()
    return redirect("/login")
