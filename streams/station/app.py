"""The station's web application: the app factory, its middleware and how errors are answered.
The pages are in pages.py and signin.py, what they share in web.py."""

import secrets
from pathlib import Path
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.middleware.sessions import SessionMiddleware

from latentline.streams.station import csrf, pages, signin
from latentline.streams.station.auth import AuthError
from latentline.streams.station.db import Conflict, NotFound, StationDB
from latentline.streams.station.images import ImageMissing, ImageStore, StoreDown
from latentline.streams.station.web import BadInput, SignInNeeded, StationConfig, redirect, render

HERE = Path(__file__).resolve().parent
SESSION_HOURS = 12  # one shift and a margin


# Each error the station reports, with its status; the message is the exception's.
STATUS = {NotFound: 404, ImageMissing: 404, Conflict: 409, BadInput: 422, csrf.CsrfError: 403,
          AuthError: 401, StoreDown: 502}


def create_app(db: StationDB, images: ImageStore | None, config: StationConfig) -> FastAPI:
    app = FastAPI(title="latentline station", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.db, app.state.images, app.state.config = db, images, config
    app.state.templates = Jinja2Templates(directory=HERE / "templates")
    app.add_middleware(SessionMiddleware, secret_key=config.session_secret or secrets.token_hex(32),
                       session_cookie="station", max_age=SESSION_HOURS * 3600, same_site="strict")
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    for error, status in STATUS.items():
        app.add_exception_handler(error, _error_handler(status))
    app.add_exception_handler(SignInNeeded, _sign_in_handler)
    app.include_router(signin.router)
    app.include_router(pages.router)
    return app


def _wants_json(request: Request) -> bool:
    return "application/json" in request.headers.get("accept", "") or request.url.path.startswith("/images/")


def _error_handler(status: int):
    async def handle(request: Request, exc: Exception) -> Response:
        message = str(exc) or type(exc).__doc__ or "error"
        if _wants_json(request):
            return JSONResponse({"error": message}, status_code=status)
        return render(request, "error.html", status=status, status_code=status, message=message)

    return handle


async def _sign_in_handler(request: Request, exc: SignInNeeded) -> Response:
    if request.method != "GET" or _wants_json(request):
        return JSONResponse({"error": "sign in first"}, status_code=401)
    return redirect(f"/login?next={quote(request.url.path)}")
