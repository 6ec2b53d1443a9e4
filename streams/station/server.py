"""``latentline station``: the database rebuilt from the topics, the feed and the outbox threads,
and the web application under uvicorn."""

import logging

import uvicorn

from latentline.models.errors import UserInputError
from latentline.streams.settings import Settings
from latentline.streams.station.app import create_app
from latentline.streams.station.auth import Auth, read_users
from latentline.streams.station.db import StationDB
from latentline.streams.station.feed import Feed
from latentline.streams.station.images import ImageStore
from latentline.streams.station.outbox import Outbox
from latentline.streams.station.web import StationConfig

log = logging.getLogger(__name__)
DB_FILE = "station.sqlite"


def station_config(settings: Settings, feed: Feed | None = None) -> StationConfig:
    auth = Auth(settings.station_auth, settings.station_users_file, settings.station_identity_header)
    if auth.mode == "password":
        if not auth.users_file.exists():
            raise UserInputError(f"no users file at {auth.users_file}: add an operator with "
                                 "`latentline station --add-user NAME` (LATENTLINE_STATION_USERS_FILE)")
        try:
            read_users(auth.users_file)  # a malformed file stops the start, not the first sign-in
        except ValueError as exc:
            raise UserInputError(str(exc)) from exc
    return StationConfig(auth=auth, undo_seconds=settings.station_undo_seconds,
                         grafana_url=settings.station_grafana_url.rstrip("/"),
                         session_secret=settings.station_session_secret.get_secret_value(),
                         ready=feed.ready if feed else (lambda: True))


def run_station(settings: Settings) -> None:
    station_config(settings)  # a missing or malformed users file stops it before anything starts
    db = StationDB(settings.station_dir / DB_FILE)
    feed = Feed(settings, db)
    config = station_config(settings, feed)
    outbox = Outbox(settings, db)
    app = create_app(db, ImageStore(settings), config)
    feed.start()
    outbox.start()
    log.info("station on http://%s:%d (%s sign-in)", settings.station_host, settings.station_port,
             config.auth.mode)
    try:
        uvicorn.run(app, host=settings.station_host, port=settings.station_port,
                    log_level=settings.log_level.lower(), access_log=False)
    finally:
        feed.stop()
        outbox.stop()  # answers still held stay in the database and go out at the next start
        db.close()
