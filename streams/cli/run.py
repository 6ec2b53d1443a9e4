"""The line's commands: publish camera events, run a worker, redrive dead letters (a real broker and
object store, configured by LATENTLINE_*)."""

import argparse
import asyncio
import json
import sys
from pathlib import Path

from latentline.schemas import ErrorKind
from latentline.streams.settings import Settings


def add_commands(sub) -> None:
    """Registers this group's commands on the root parser's subparsers."""
    for add in (_add_publish, _add_worker, _add_redrive):
        add(sub)


def _add_publish(sub) -> None:
    publish = sub.add_parser("publish", help="upload images and publish their camera events")
    publish.add_argument("directory", type=Path)
    publish.add_argument("--camera", required=True)
    publish.add_argument("--rate", type=float, help="events per second (default: as fast as possible)")
    publish.add_argument("--broker", help="overrides LATENTLINE_BROKER_URL")
    publish.add_argument("--store", help="overrides LATENTLINE_STORE_URL")
    publish.set_defaults(run=cmd_publish)


def _add_worker(sub) -> None:
    worker = sub.add_parser("worker", help="run an inspection worker (configured by LATENTLINE_*)")
    worker.set_defaults(run=cmd_worker)


def _add_redrive(sub) -> None:
    redrive = sub.add_parser("redrive", help="re-publish chosen dead letters once their cause is fixed")
    redrive.add_argument("--kind", action="append", default=[], choices=[k.value for k in ErrorKind],
                         help="only this error kind (repeatable; default: every kind)")
    redrive.add_argument("--since", help="only letters that failed at or after this ISO time (with zone)")
    redrive.add_argument("--until", help="only letters that failed before this ISO time (with zone)")
    redrive.add_argument("--event-id", action="append", default=[], help="only this event (repeatable)")
    redrive.add_argument("--dry-run", action="store_true", help="count what would be re-published")
    redrive.set_defaults(run=cmd_redrive)


def cmd_publish(args: argparse.Namespace, settings: Settings) -> int:
    import time

    from tqdm import tqdm

    from latentline.models.dataset import IMAGE_SUFFIXES
    from latentline.streams.client import CameraClient
    from latentline.streams.worker.topics import ensure_topics

    settings = settings.model_copy(update={
        k: v for k, v in (("broker_url", args.broker), ("store_url", args.store)) if v
    })
    paths = sorted(p for p in args.directory.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not paths:
        print(f"no images under {args.directory}", file=sys.stderr)
        return 1
    asyncio.run(ensure_topics(settings))
    interval = 1.0 / args.rate if args.rate else 0.0
    # The camera-side client (streams/client.py); without waiting for each acknowledgement, so
    # sends pipeline: a failed one is raised when the client closes (flushes), never dropped.
    with CameraClient.from_settings(settings) as client:
        client.ensure_bucket()
        start = time.monotonic()
        with tqdm(total=len(paths), desc=f"publishing {args.camera}", unit="event") as bar:
            for index, path in enumerate(paths):
                if interval:
                    time.sleep(max(0.0, start + index * interval - time.monotonic()))
                client.publish(path, args.camera, wait=False)
                bar.update()
    return 0


def cmd_worker(args: argparse.Namespace, settings: Settings) -> int:
    from latentline.streams.worker.worker import run_worker

    run_worker(settings)
    return 0


def cmd_redrive(args: argparse.Namespace, settings: Settings) -> int:
    from datetime import datetime

    from latentline.streams.worker.redrive import RedriveFilter, redrive

    chosen = RedriveFilter(
        kinds=frozenset(ErrorKind(k) for k in args.kind),
        since=datetime.fromisoformat(args.since) if args.since else None,
        until=datetime.fromisoformat(args.until) if args.until else None,
        event_ids=frozenset(args.event_id),
    )
    report = asyncio.run(redrive(settings, chosen, dry_run=args.dry_run))
    print(json.dumps(report.as_dict() | {"dry_run": args.dry_run}, indent=2))
    return 0
