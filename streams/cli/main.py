"""``latentline``: fit, evaluate, calibrate, make-reference, compare, publish, worker, redrive, demo,
chaos, evaluate-stream, bench."""

import argparse
import logging
import sys

from streams.cli import lab, model, run
from streams.settings import Settings


def parser() -> argparse.ArgumentParser:
    """One group of commands per module: the model's, the line's, the lab's."""
    root = argparse.ArgumentParser(prog="latentline", description=__doc__)
    sub = root.add_subparsers(dest="command", required=True)
    for group in (model, run, lab):
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
    return args.run(args, settings)


if __name__ == "__main__":
    sys.exit(main())
