"""The latentline command: each group registers its commands, each command keeps its handler."""

import argparse
import io
from pathlib import Path

from latentline.streams.cli import lab, main, model, run, station

GROUPS = {
    model: {"fit", "evaluate", "calibrate", "make-reference", "make-hard-cases", "evaluate-stream",
            "evaluate-scenarios"},
    run: {"publish", "worker", "redrive"},
    lab: {"demo", "chaos", "compare", "bench"},
    station: {"station"},
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
    args = main.parser().parse_args(["fit", "d", "--out", "m", "--tiles", "8x1", "--descriptor", "centre"])
    assert (args.tiles, args.descriptor) == ((8, 1), "centre")
    assert main.parser().parse_args(["fit", "d", "--out", "m"]).tiles == "auto"
    assert main.parser().parse_args(["fit", "d", "--out", "m", "--tiles", "shape"]).tiles == "shape"
    args = main.parser().parse_args(["make-hard-cases", "data", "--out", "hard", "--kind", "strip"])
    assert (args.kind, args.length, args.masks, args.run) == ("strip", 8, "tile", model.cmd_make_hard_cases)
    args = main.parser().parse_args(["make-hard-cases", "data", "--out", "h", "--masks", "twin"])
    assert args.masks == "twin"
    args = main.parser().parse_args(["bench"])
    assert (args.events, args.out, args.run) == (400, Path("var/bench.json"), lab.cmd_bench)
    args = main.parser().parse_args(["station", "--add-user", "op-1"])
    assert (args.add_user, args.run) == ("op-1", station.cmd_station)


def test_user_errors_are_one_line_with_what_to_do_and_exit_2(tmp_path, capsys, pcb_dir):
    (tmp_path / "train").mkdir()
    cases = {
        ("fit", str(tmp_path / "missing"), "--out", str(tmp_path / "m")): "train/good/",
        ("fit", str(tmp_path), "--out", str(tmp_path / "m")): "need at least",
        ("fit", str(pcb_dir), "--out", str(tmp_path / "m"), "--method", "nope"): "unknown method 'nope'",
        ("evaluate", str(tmp_path), str(pcb_dir), "--out", str(tmp_path / "r")): "latentline fit",
    }
    for argv, expected in cases.items():
        assert main.main(list(argv)) == main.EXIT_USER_ERROR
        err = capsys.readouterr().err.strip()
        assert err.startswith(f"latentline {argv[0]}: ") and expected in err and "\n" not in err


def test_unreachable_broker_is_a_user_error(tmp_path, capsys, pcb_dir):
    from latentline.streams.lab.embedded import free_port

    argv = ["publish", str(pcb_dir / "test" / "spur"), "--camera", "cam-1",
            "--broker", f"kafka://127.0.0.1:{free_port()}"]
    assert main.main(argv) == main.EXIT_USER_ERROR
    assert "the Kafka broker cannot be reached" in capsys.readouterr().err


def test_the_station_without_operators_is_a_user_error(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("LATENTLINE_STATION_USERS_FILE", str(tmp_path / "users"))
    monkeypatch.setenv("LATENTLINE_STATION_DIR", str(tmp_path))
    assert main.main(["station"]) == main.EXIT_USER_ERROR
    assert "latentline station --add-user NAME" in capsys.readouterr().err
    monkeypatch.setattr("sys.stdin", io.StringIO("a-long-password\n"))
    assert main.main(["station", "--add-user", "op-1"]) == 0
    (tmp_path / "users").write_text((tmp_path / "users").read_text() + "op-2 no-hash\n")
    assert main.main(["station"]) == main.EXIT_USER_ERROR
    assert "users:2: expected operator:scrypt" in capsys.readouterr().err


def test_debug_keeps_the_traceback(tmp_path):
    import pytest

    from latentline.models.errors import UserInputError

    with pytest.raises(UserInputError):
        main.main(["--debug", "fit", str(tmp_path / "missing"), "--out", str(tmp_path / "m")])


def test_the_camera_clients_failures_are_user_errors():
    from urllib3.exceptions import MaxRetryError

    from latentline.streams.client import BrokerUnavailable, SendError, UploadError

    assert main.user_error(BrokerUnavailable("no broker at k:9092")).startswith(
        "the Kafka broker cannot be reached: no broker at k:9092 (is it running?")
    down = UploadError("s3://b/k not uploaded")
    down.__cause__ = MaxRetryError(None, "/b/k")
    assert main.user_error(down).startswith("the object store cannot be reached: s3://b/k not uploaded")
    assert main.user_error(UploadError("s3://b/k not uploaded: AccessDenied")) == (
        "s3://b/k not uploaded: AccessDenied")
    assert main.user_error(SendError("event e not acknowledged", [])) == "event e not acknowledged"


def test_evaluate_scenarios_takes_several_datasets_and_seeds():
    args = main.parser().parse_args(["evaluate-scenarios", "a", "b", "--out", "r", "--seeds", "0,5"])
    assert (args.data_dirs, args.out, args.seeds, args.stable_events, args.run) == (
        [Path("a"), Path("b")], Path("r"), "0,5", 2000, model.cmd_evaluate_scenarios)


def test_version_says_which_latentline_this_is(capsys):
    import pytest

    with pytest.raises(SystemExit) as exit:
        main.parser().parse_args(["--version"])
    assert exit.value.code == 0
    out = capsys.readouterr().out.strip()
    assert out.startswith("latentline ") and out.split()[1][0].isdigit()
