"""``latentline``: fit, evaluate, calibrate, make-reference, compare, publish, worker, redrive, demo,
chaos, evaluate-stream, bench, station."""

import argparse
import logging
import sys

from latentline.models.errors import UserInputError
from latentline.streams.cli import lab, model, run, station
from latentline.streams.settings import Settings

EXIT_USER_ERROR = 2  # as argparse exits on a bad command line


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("latentline")
    except PackageNotFoundError:  # a source tree that was never installed
        return "(not installed)"


def parser() -> argparse.ArgumentParser:
    """One group of commands per module: the model's, the line's, the lab's."""
    root = argparse.ArgumentParser(prog="latentline", description=__doc__)
    root.add_argument("--debug", action="store_true", help="show the traceback of an error")
    root.add_argument("--version", action="version", version=f"latentline {_version()}")
    sub = root.add_subparsers(dest="command", required=True)
    for group in (model, run, lab, station):
        group.add_commands(sub)
    return root


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    settings = Settings()
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if args.command != "worker":  # client chatter would bury the live view and progress bars
        for noisy in ("aiokafka", "kafka", "urllib3"):
            logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        return args.run(args, settings)
    except Exception as exc:
        message = user_error(exc)
        if message is None or args.debug:
            raise
        print(f"latentline {args.command}: {message}", file=sys.stderr)
        return EXIT_USER_ERROR


def user_error(exc: Exception) -> str | None:
    """One line for an error the user can fix (a folder, a file, a name, an unreachable service);
    None for a fault of the code, which keeps its traceback."""
    from latentline.streams.client import PublishError

    if isinstance(exc, UserInputError):
        return str(exc)
    if isinstance(exc, OSError) and exc.filename:
        return f"cannot read {exc.filename}: {exc.strerror or exc}"
    unreachable = unreachable_service(exc)
    if unreachable:
        return f"{unreachable} (is it running? the address is a LATENTLINE_ setting, see docs/settings.md)"
    if isinstance(exc, PublishError):  # the camera client's: an upload or a send that failed
        return str(exc)
    return None


def unreachable_service(exc: Exception) -> str | None:
    from aiokafka.errors import KafkaConnectionError
    from urllib3.exceptions import MaxRetryError

    from latentline.streams.client import BrokerUnavailable, UploadError
    from latentline.streams.worker.store import StoreUnavailable

    if isinstance(exc, KafkaConnectionError | BrokerUnavailable):
        return f"the Kafka broker cannot be reached: {exc}"
    if isinstance(exc, UploadError) and isinstance(exc.__cause__, MaxRetryError | OSError):
        return f"the object store cannot be reached: {exc}"
    if isinstance(exc, StoreUnavailable | MaxRetryError):
        return f"the object store cannot be reached: {exc}"
    return None


if __name__ == "__main__":
    sys.exit(main())
