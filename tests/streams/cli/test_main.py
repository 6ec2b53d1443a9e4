"""The latentline command: each group registers its commands, each command keeps its handler."""

import argparse
from pathlib import Path

from streams.cli import lab, main, model, run

GROUPS = {
    model: {"fit", "evaluate", "calibrate", "make-reference", "evaluate-stream"},
    run: {"publish", "worker", "redrive"},
    lab: {"demo", "chaos", "compare", "bench"},
}


def commands() -> dict[str, argparse.ArgumentParser]:
    root = main.parser()
    return next(a for a in root._actions if isinstance(a, argparse._SubParsersAction)).choices


def test_every_command_is_registered_once_by_its_group():
    found = commands()
    assert set(found) == set().union(*GROUPS.values())
    handlers = {name: found[name].get_default("run").__module__ for name in found}
    assert handlers == {name: group.__name__ for group, names in GROUPS.items() for name in names}


def test_arguments_parse_into_the_handlers_namespace():
    args = main.parser().parse_args(["redrive", "--kind", "poison", "--kind", "missing_object", "--dry-run"])
    assert (args.kind, args.dry_run, args.event_id, args.run) == (
        ["poison", "missing_object"], True, [], run.cmd_redrive)
    args = main.parser().parse_args(["fit", "data", "--out", "model", "--views", "1"])
    assert (args.data_dir, args.out, args.views, args.weights, args.run) == (
        Path("data"), Path("model"), 1, "IMAGENET1K_V1", model.cmd_fit)
    args = main.parser().parse_args(["bench"])
    assert (args.events, args.out, args.run) == (400, Path("var/bench.json"), lab.cmd_bench)
