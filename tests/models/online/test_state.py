"""State records: plain JSON read back only if it is exactly what a codec wrote; never code."""

import doctest
import pathlib
import pickle

import pytest

from latentline.models.online import state
from latentline.models.online.state import StateError, dumps_state, loads_state

RECORD = {"format": "thing/1", "name": "caméra-7", "values": [0.5, -1, 3e-9]}


class TouchOnUnpickle:
    """A tampered changelog value: unpickling it creates ``path`` (it could run anything)."""

    def __init__(self, path: pathlib.Path):
        self.path = path

    def __reduce__(self):
        return pathlib.Path.touch, (self.path,)


def test_a_record_round_trips_as_compact_utf8_json():
    data = dumps_state(RECORD)
    assert b" " not in data and "caméra-7".encode() in data
    assert loads_state(data, "thing", 1) == RECORD


@pytest.mark.parametrize("protocol", [0, pickle.HIGHEST_PROTOCOL])
def test_a_pickle_is_rejected_not_executed(tmp_path, protocol):
    target = tmp_path / "owned"
    payload = pickle.dumps(TouchOnUnpickle(target), protocol=protocol)
    with pytest.raises(StateError, match="not (UTF-8|JSON)"):
        loads_state(payload, "drift-monitor", 1)
    assert not target.exists()
    pickle.loads(payload)  # the payload is live: what loads_state refused would have run
    assert target.exists()


@pytest.mark.parametrize("data, reason", [
    (b'{"format": "thing/2", "values": []}', "expected 'thing/1'"),
    (b'{"format": "other/1"}', "expected 'thing/1'"),
    (b'{"values": []}', "'format' is None"),
    (b'[{"format": "thing/1"}]', "not an object"),
    (b'{"format": "thing/1", "x": NaN}', "NaN"),
    (b'{"format": "thing/1", "x": Infinity}', "Infinity"),
    (b'{"format": "thing/1", "x": -Infinity}', "-Infinity"),
    (b'{"format": "thing/1", "x": 1e999}', "not a finite number"),
    (b'{"format": "thing/1", ', "not JSON"),
    (b'\xff\xfe{}', "not UTF-8"),
    (b"[" * 100_000 + b"]" * 100_000, "not JSON"),
])
def test_anything_else_is_rejected_with_a_reason(data, reason):
    with pytest.raises(StateError, match=reason.replace("(", r"\(")):
        loads_state(data, "thing", 1)


def test_oversized_records_are_refused_both_ways():
    data = dumps_state(RECORD)
    with pytest.raises(StateError, match="over the limit"):
        loads_state(data, "thing", 1, max_bytes=len(data) - 1)
    with pytest.raises(StateError, match="over the limit"):
        dumps_state(RECORD, max_bytes=len(data) - 1)
    assert loads_state(data, "thing", 1, max_bytes=len(data)) == RECORD


def test_what_could_not_be_read_back_is_not_written():
    with pytest.raises(StateError, match="cannot be written"):
        dumps_state({"format": "thing/1", "x": float("nan")})
    with pytest.raises(StateError, match="cannot be written"):
        dumps_state({"format": "thing/1", "x": object()})
    with pytest.raises(StateError, match="not bytes"):
        loads_state(dumps_state(RECORD).decode(), "thing", 1)


def test_helpers_return_typed_values_or_say_what_is_wrong():
    record = {"n": 3, "x": 2, "flag": True, "name": "cam-1", "v": [1, 2.5]}
    assert state.require(record, "x", float) == 2.0 and isinstance(state.require(record, "x", float), float)
    assert state.count(record, "n", 1) == 3
    assert state.vector(record["v"], 2) == [1.0, 2.5]
    assert state.text(record["name"]) == "cam-1"
    for call, reason in [
        (lambda: state.require(record, "flag", int), "'flag': must be int, not bool"),
        (lambda: state.require(record, "name", (int, type(None))), "must be int or null, not str"),
        (lambda: state.require(record, "absent", int), "missing 'absent'"),
        (lambda: state.count({"n": -1}, "n"), "'n': -1 is below 0"),
        (lambda: state.require({"x": float("inf")}, "x", float), "'x': inf is not a finite number"),
        (lambda: state.finite(2.0, 0, 1), "outside"),
        (lambda: state.vector([1.0, float("nan")]), "nan is not a finite number"),
        (lambda: state.vector([1.0], 2), "expected 2"),
        (lambda: state.vector([]), "non-empty"),
        (lambda: state.text("x" * 300), "not within 1..256"),
        (lambda: state.text(""), "not within"),
        (lambda: state.exact_keys({"a": 1, "b": 2}, ["a"]), r"unknown keys \['b'\]"),
        (lambda: state.exact_keys({"a": 1}, ["a", "c"]), r"missing keys \['c'\]"),
        (lambda: state.exact_keys([1], ["a"]), "expected an object, not list"),
    ]:
        with pytest.raises(StateError, match=reason):
            call()


def test_within_says_where():
    with pytest.raises(StateError, match=r"^tracks\['a'\]: recent\[3\]: 'x' is wrong$"):
        with state.within("tracks['a']"), state.within("recent[3]"):
            raise StateError("'x' is wrong")


def test_the_module_examples_hold():
    result = doctest.testmod(state)
    assert result.attempted >= 4 and result.failed == 0
