"""Explicit, versioned state records: JSON that can only ever become data, never code.

The worker keeps its drift monitors and novelty detectors in Kafka changelog topics and reads
them back at start. A pickle there would run whatever code its bytes name (anyone able to write
to the topic could run code in the worker), and its meaning depends on the private layout of
river's classes, which an upgrade may change without a word. A record is instead a JSON object
whose ``"format"`` names its kind and version (``"drift-monitor/1"``); the codecs
(``DriftMonitor.to_state``/``from_state``, ``NoveltyDetector.to_state``/``from_state``) write
only plain values and check every field they read. Whatever they reject raises StateError.

>>> data = dumps_state({"format": "example/1", "count": 3})
>>> data
b'{"format":"example/1","count":3}'
>>> loads_state(data, "example", 1)["count"]
3
>>> loads_state(data, "example", 2)  # doctest: +IGNORE_EXCEPTION_DETAIL
Traceback (most recent call last):
StateError: 'format' is 'example/1', expected 'example/2'
>>> loads_state(b'{"format": "example/1", "count": NaN}', "example", 1)  # doctest: +IGNORE_EXCEPTION_DETAIL
Traceback (most recent call last):
StateError: record is not JSON: NaN is not a number a record may hold
"""

import contextlib
import json
import math
from collections.abc import Iterable, Iterator
from typing import Any

MAX_BYTES = 8 * 2**20  # far above any real record (a few hundred kB): a bound, not a budget
MAX_NAME = 256  # identifiers: event, camera and candidate ids, statistic names, labels
MAX_URI = 2048
MAX_INT = 2**53  # integers a JSON reader anywhere keeps exact, and sizes Python can allocate


class StateError(ValueError):
    """A state record that is rejected: not JSON, of another kind or version, or out of range."""


def dumps_state(state: dict, max_bytes: int = MAX_BYTES) -> bytes:
    """Compact UTF-8 JSON. Refuses what ``loads_state`` would refuse to read back (a non-finite
    number, a record over ``max_bytes``): better a failed write now than a worker that cannot
    start later."""
    try:
        text = json.dumps(state, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as error:
        raise StateError(f"state cannot be written as JSON: {error}") from None
    data = text.encode()
    _check_size(data, max_bytes)
    return data


def loads_state(data: bytes, kind: str, version: int | tuple[int, ...], max_bytes: int = MAX_BYTES) -> dict:
    """The JSON object in ``data`` if its ``"format"`` is ``f"{kind}/{version}"`` (one of
    ``version`` if several: the codec reads older ones too). Only parses: the codec of that kind
    checks the fields."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise StateError(f"record is {type(data).__name__}, not bytes")
    _check_size(data, max_bytes)
    try:
        text = bytes(data).decode("utf-8")
    except UnicodeDecodeError as error:
        raise StateError(f"record is not UTF-8 (byte {error.start}: {error.reason})") from None
    state = _parse(text)
    if not isinstance(state, dict):
        raise StateError(f"record is a JSON {type(state).__name__}, not an object")
    check_format(state, kind, version)
    return state


def _check_size(data: bytes, max_bytes: int) -> None:
    if len(data) > max_bytes:
        raise StateError(f"record of {len(data)} bytes is over the limit of {max_bytes}")


def _parse(text: str) -> Any:
    try:
        return json.loads(text, parse_constant=_reject_constant, parse_float=_finite_literal)
    except StateError as error:
        raise StateError(f"record is not JSON: {error}") from None
    except (ValueError, RecursionError) as error:  # RecursionError: nesting thousands deep
        raise StateError(f"record is not JSON: {error}") from None


def _reject_constant(name: str):
    raise StateError(f"{name} is not a number a record may hold")


def _finite_literal(text: str) -> float:
    value = float(text)  # "1e999" parses as inf without ever spelling Infinity
    if not math.isfinite(value):
        raise StateError(f"{text} is not a finite number")
    return value


def check_format(state: dict, kind: str, version: int | tuple[int, ...]) -> None:
    versions = version if isinstance(version, tuple) else (version,)
    expected = [f"{kind}/{v}" for v in versions]
    if state.get("format") not in expected:
        raise StateError(f"'format' is {state.get('format')!r}, expected {' or '.join(map(repr, expected))}")


# Validation helpers shared by the codecs. Each returns the checked value or raises StateError
# naming what is wrong; ``within`` adds where (``candidates[2]: 'size' must be ...``).


@contextlib.contextmanager
def within(where: str) -> Iterator[None]:
    try:
        yield
    except StateError as error:
        raise StateError(f"{where}: {error}") from None


def exact_keys(mapping: Any, keys: Iterable[str]) -> dict:
    """``mapping`` itself, if it is an object with exactly ``keys``: a key this version does not
    know is an error, not something to skip (it may be a newer writer's, meaning more)."""
    if not isinstance(mapping, dict):
        raise StateError(f"expected an object, not {type(mapping).__name__}")
    keys = set(keys)
    if unknown := sorted(map(str, mapping.keys() - keys)):
        raise StateError(f"unknown keys {unknown}")
    if missing := sorted(keys - mapping.keys()):
        raise StateError(f"missing keys {missing}")
    return mapping


def require(mapping: dict, key: str, kind: type | tuple[type, ...]) -> Any:
    """``mapping[key]`` if it is of type ``kind``; a float may be written as an integer (JSON
    does not tell them apart) and must be finite; a bool is never a number."""
    if key not in mapping:
        raise StateError(f"missing {key!r}")
    kinds = kind if isinstance(kind, tuple) else (kind,)
    value = mapping[key]
    with within(repr(key)):
        if float in kinds and _is_number(value):
            return finite(value)
        if (isinstance(value, bool) and bool not in kinds) or not isinstance(value, kinds):
            names = " or ".join("null" if k is type(None) else k.__name__ for k in kinds)
            raise StateError(f"must be {names}, not {type(value).__name__}")
    return value


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def count(mapping: dict, key: str, low: int = 0) -> int:
    """``mapping[key]`` if it is an integer within [low, MAX_INT]."""
    value = require(mapping, key, int)
    with within(repr(key)):
        return integer(value, low)


def finite(value: Any, low: float = -math.inf, high: float = math.inf) -> float:
    """``value`` as a float, if it is a finite number within [low, high]."""
    if not _is_number(value) or not math.isfinite(value):
        raise StateError(f"{value!r} is not a finite number")
    if not low <= value <= high:
        raise StateError(f"{value!r} is outside [{low}, {high}]")
    return float(value)


def integer(value: Any, low: int = 0, high: int = MAX_INT) -> int:
    """``value`` if it is an integer (not a bool) within [low, high]: counts are never negative."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise StateError(f"{value!r} is not an integer")
    if value < low:
        raise StateError(f"{value} is below {low}")
    if value > high:
        raise StateError(f"{value} is above {high}")
    return value


def text(value: Any, max_length: int = MAX_NAME) -> str:
    """``value`` if it is a non-empty string of at most ``max_length`` characters."""
    if not isinstance(value, str):
        raise StateError(f"{value!r} is not a string")
    if not 0 < len(value) <= max_length:
        raise StateError(f"string of length {len(value)} is not within 1..{max_length}")
    return value


def vector(values: Any, length: int | None = None) -> list[float]:
    """``values`` if it is a non-empty list of finite numbers, of ``length`` items if given."""
    if not isinstance(values, list) or not values:
        raise StateError("expected a non-empty list of numbers")
    if length is not None and len(values) != length:
        raise StateError(f"vector of {len(values)} values, expected {length}")
    return [finite(v) for v in values]
