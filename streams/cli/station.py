"""The review station: ``latentline station`` serves it; ``--add-user NAME`` adds an operator."""

import argparse
import getpass
import sys

from latentline.streams.settings import Settings


def add_commands(sub) -> None:
    """Registers this group's commands on the root parser's subparsers."""
    station = sub.add_parser("station", help="the review station: operators answer review requests and "
                             "name new defect types in a browser (docs/station.md)")
    station.add_argument("--add-user", metavar="NAME", help="add (or reset) an operator in the users file "
                         "and exit; the password is read from stdin, or asked for on a terminal")
    station.set_defaults(run=cmd_station)


def cmd_station(args: argparse.Namespace, settings: Settings) -> int:
    if args.add_user:
        from latentline.streams.station.auth import add_user

        if sys.stdin.isatty():
            password = getpass.getpass(f"password for {args.add_user}: ")
        else:
            password = sys.stdin.readline().rstrip("\n")
        if len(password) < 8:
            print("latentline station: a password needs at least 8 characters", file=sys.stderr)
            return 2
        add_user(settings.station_users_file, args.add_user, password)
        print(f"{args.add_user} added to {settings.station_users_file}")
        return 0
    from latentline.streams.station.server import run_station

    run_station(settings)
    return 0
