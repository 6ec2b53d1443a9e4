"""A real TCP proxy between the store client and the S3 server, with faults on demand.

It relies on one request per connection, which holds for moto: werkzeug's server answers every
request with ``Connection: close``. So per connection: one request line, then one response whose
bytes after the first blank line are its body.
"""

import contextlib
import socket
import threading
import time
from dataclasses import dataclass


def _close(sock: socket.socket) -> None:
    # shutdown, not close alone: it wakes a thread blocked in recv/accept on the same socket.
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()


@dataclass
class Fault:
    """A response fault for some requests: ``times`` of them (None: every one)."""

    cut_after: int | None = None
    dribble: tuple[int, float] | None = None
    times: int | None = None


class FaultyProxy:
    """``cut_after``: drop the connection after that many body bytes of a response.
    ``dribble``: (bytes, seconds): forward response bodies that many bytes at a time, pausing
    after each piece (headers pass at once).
    ``status``: answer every request with this HTTP status and no body, without the server.
    ``refuse()``: stop listening, so connections are refused.
    ``requests`` and ``body_bytes`` record what went through.
    ``path_faults``: request-line substring -> ``Fault`` for those requests only (the others pass
    untouched), so one object of a burst can misbehave while the rest are served normally."""

    def __init__(self, upstream_port: int):
        self.upstream = ("127.0.0.1", upstream_port)
        self.cut_after: int | None = None
        self.dribble: tuple[int, float] | None = None
        self.path_faults: dict[str, Fault] = {}
        self.status: int | None = None
        self.requests: list[str] = []
        self.body_bytes = 0
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def methods(self) -> list[str]:
        return [line.split(" ", 1)[0] for line in self.requests]

    def refuse(self) -> None:
        _close(self._listener)

    def close(self) -> None:
        self.refuse()
        with self._lock:
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            _close(sock)

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                self._sockets.append(client)
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        if self.status is not None:
            return self._answer(client, self.status)
        with contextlib.suppress(OSError):
            head = self._request_line(client)
            fault = self._fault_for(head.split(b"\r\n", 1)[0].decode("latin-1"))
            upstream = socket.create_connection(self.upstream)
            with self._lock:
                self._sockets.append(upstream)
            upstream.sendall(head)
            threading.Thread(target=self._pump_request, args=(client, upstream), daemon=True).start()
            self._pump_response(upstream, client, fault)
        _close(client)

    def _request_line(self, client: socket.socket) -> bytes:
        head = b""
        while b"\r\n" not in head and (data := client.recv(65536)):
            head += data
        self._record(head)
        return head

    def _fault_for(self, request_line: str) -> Fault:
        with self._lock:
            for pattern, fault in self.path_faults.items():
                if pattern in request_line and fault.times != 0:
                    if fault.times is not None:
                        fault.times -= 1
                    return fault
        return Fault(self.cut_after, self.dribble)

    def _answer(self, client: socket.socket, status: int) -> None:
        head = b""
        with contextlib.suppress(OSError):
            # The whole request first (GET and HEAD have no body): unread bytes would turn our
            # close into a reset that hides the answer.
            while b"\r\n\r\n" not in head and (data := client.recv(65536)):
                head += data
            self._record(head)
            answer = f"HTTP/1.1 {status} Fault\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            client.sendall(answer.encode())
        _close(client)

    def _record(self, head: bytes) -> None:
        with self._lock:
            self.requests.append(head.split(b"\r\n", 1)[0].decode("latin-1"))

    def _pump_request(self, client: socket.socket, upstream: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := client.recv(65536):
                upstream.sendall(data)
            upstream.shutdown(socket.SHUT_WR)

    def _pump_response(self, upstream: socket.socket, client: socket.socket, fault: Fault) -> None:
        head, body_sent = b"", None  # body_sent is None until the header block has passed
        try:
            while data := upstream.recv(65536):
                if body_sent is None:
                    head += data
                    if b"\r\n\r\n" not in head:
                        continue
                    header, _, data = head.partition(b"\r\n\r\n")
                    client.sendall(header + b"\r\n\r\n")
                    body_sent = 0
                if fault.cut_after is not None and body_sent + len(data) >= fault.cut_after:
                    self._send_body(client, data[: fault.cut_after - body_sent], fault.dribble)
                    return  # the finally drops both sides mid-body
                self._send_body(client, data, fault.dribble)
                body_sent += len(data)
        except OSError:
            pass
        finally:
            _close(upstream)
            _close(client)

    def _send_body(self, client: socket.socket, data: bytes, dribble: tuple[int, float] | None) -> None:
        step, pause = dribble or (len(data) or 1, 0.0)
        for start in range(0, len(data), step):
            piece = data[start : start + step]
            client.sendall(piece)
            with self._lock:
                self.body_bytes += len(piece)
            if pause:
                time.sleep(pause)
