"""The operator's pages: the review queue, a request and its answer, undo, new-type candidates
and drift alerts, the live line view, and the images they show."""

import re

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from latentline.schemas import AlertKind, AlertStatus
from latentline.streams.station.db import GOOD, Conflict, NotFound
from latentline.streams.station.web import BadInput, Operator, checked_form, flash, redirect, render

router = APIRouter()
TYPE_NAME = re.compile(r"[a-z0-9][a-z0-9._:-]{0,63}")  # a label is an Identifier (schemas/base.py)
TYPE_KEYS = "123456789"  # one key per known type, in name order
ORDERS = ("newest", "uncertain")


def label_name(raw: str | None) -> str:
    """A type name as operators type it ("Solder bridge") as a label ("solder_bridge")."""
    name = re.sub(r"\s+", "_", (raw or "").strip().lower())
    if not TYPE_NAME.fullmatch(name):
        raise BadInput(f"not a usable type name: {raw!r} (letters, digits, . _ : -, at most 64)")
    return name


@router.get("/healthz")
def healthz(request: Request) -> Response:
    state = request.app.state
    return JSONResponse({"ready": state.config.ready(), "open_requests": state.db.open_count()})


@router.get("/")
def home(operator: str = Operator) -> Response:
    return redirect("/queue")


@router.get("/queue")
def queue(request: Request, line: str = "", camera: str = "", reason: str = "", order: str = "newest",
          operator: str = Operator) -> Response:
    order = order if order in ORDERS else "newest"
    db = request.app.state.db
    requests = db.open_requests(line, camera, reason, order)
    chosen = {"line": line, "camera": camera, "reason": reason, "order": order}
    return render(request, "queue.html", requests=requests, facets=db.facets(), chosen=chosen)


@router.get("/requests/{event_id}")
def request_page(request: Request, event_id: str, operator: str = Operator) -> Response:
    view = request.app.state.db.request(event_id)
    keys = dict(zip(TYPE_KEYS, request.app.state.db.known_types()))
    return render(request, "request.html", view=view, keys=keys, good=GOOD)


@router.post("/requests/{event_id}/label")
async def answer(request: Request, event_id: str, operator: str = Operator) -> Response:
    form = await checked_form(request)
    db = request.app.state.db
    db.request(event_id)  # NotFound before anything is held
    label = label_name(form.get("label"))
    held = db.hold([event_id], label, operator, request.app.state.config.undo_seconds)
    flash(request, f"answered '{label}'", held.answer_id)
    following = db.next_open(event_id)
    return redirect(f"/requests/{following}" if following else "/queue")


@router.post("/answers/{answer_id}/undo")
async def undo(request: Request, answer_id: str, operator: str = Operator) -> Response:
    await checked_form(request)
    held = request.app.state.db.undo(answer_id, operator)
    flash(request, f"undone: '{held.label}' was not sent")
    if held.alert_id:
        return redirect(f"/candidates/{held.alert_id}")
    return redirect(f"/requests/{held.event_ids[0]}")


@router.get("/candidates")
def candidates(request: Request, operator: str = Operator) -> Response:
    db = request.app.state.db
    return render(request, "candidates.html", candidates=db.alerts(AlertKind.NEW_DEFECT_TYPE),
                  closed=db.alerts(AlertKind.NEW_DEFECT_TYPE, AlertStatus.CLOSED, limit=10),
                  drifts=db.alerts(AlertKind.DRIFT, status=None, limit=50))


@router.get("/candidates/{alert_id}")
def candidate(request: Request, alert_id: str, operator: str = Operator) -> Response:
    db = request.app.state.db
    alert = _candidate(db, alert_id)
    return render(request, "candidate.html", alert=alert, held=db.candidate_held(alert_id),
                  types=db.known_types())


@router.post("/candidates/{alert_id}/label")
async def name_candidate(request: Request, alert_id: str, operator: str = Operator) -> Response:
    """Labels every exemplar: the first label closes the candidate, all of them teach the type."""
    form = await checked_form(request)
    db = request.app.state.db
    alert = _candidate(db, alert_id)
    if alert.status is AlertStatus.CLOSED:
        raise Conflict(f"candidate {alert_id} is closed: {alert.message}")
    if (held := db.candidate_held(alert_id)) is not None:
        raise Conflict(f"candidate {alert_id} is named '{held.label}' by {held.labelled_by} already")
    label = label_name(form.get("label"))
    held = db.hold(alert.novelty.exemplar_event_ids, label, operator, request.app.state.config.undo_seconds,
                   alert_id=alert_id)
    flash(request, f"named '{label}' ({len(held.event_ids)} exemplars)", held.answer_id)
    return redirect(f"/candidates/{alert_id}")


def _candidate(db, alert_id: str):
    alert = db.alert(alert_id)
    if alert.kind is not AlertKind.NEW_DEFECT_TYPE:
        raise NotFound(f"alert {alert_id} is not a new-type candidate")
    return alert


@router.get("/line")
def line(request: Request, operator: str = Operator) -> Response:
    db = request.app.state.db
    counts = db.line_counts()
    recent = {camera: db.recent_verdicts(camera) for camera in sorted(counts)}
    return render(request, "line.html", counts=counts, recent=recent,
                  grafana=request.app.state.config.grafana_url)


@router.get("/images/requests/{event_id}/{which}")
def request_image(request: Request, event_id: str, which: str, operator: str = Operator) -> Response:
    view = request.app.state.db.request(event_id)
    uris = {"image": view.request.image_uri, "heatmap": view.request.heatmap_uri}
    if not uris.get(which):
        raise NotFound(f"request {event_id} has no {which}")
    return _image(request, uris[which])


@router.get("/images/candidates/{alert_id}/{index}")
def candidate_image(request: Request, alert_id: str, index: int, operator: str = Operator) -> Response:
    uris = _candidate(request.app.state.db, alert_id).novelty.exemplar_uris
    if not 0 <= index < len(uris):
        raise NotFound(f"candidate {alert_id} has {len(uris)} exemplars, not {index + 1}")
    return _image(request, uris[index])


def _image(request: Request, uri: str) -> Response:
    image = request.app.state.images.get(uri)
    # private: a shared cache must not keep what needs a sign-in
    return Response(image.data, media_type=image.content_type,
                    headers={"Cache-Control": "private, max-age=600", "X-Content-Type-Options": "nosniff"})
