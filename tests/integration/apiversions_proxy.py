"""A loopback TCP proxy in front of Tansu that lets librdkafka clients (kcat) talk to it.

Tansu 0.6 ends its ApiVersions v3 response with four tagged fields (supported and finalized
features, zk migration); Debian's librdkafka 2.0 misreads them ("Read underflow") and drops the
connection. The proxy removes those optional tagged fields from ApiVersions responses and passes
every other byte through unchanged. Tansu must advertise the proxy's address, so that clients
come back through it after the metadata request.
"""

import asyncio
import contextlib
import struct
import threading
from collections.abc import Iterator

API_VERSIONS = 18


def strip_tagged_fields(frame: bytes) -> bytes:
    """ApiVersions v3+ response body (after the 4-byte size): drop the trailing tagged fields."""
    offset = 4 + 2  # correlation id, error code
    count, offset = _uvarint(frame, offset)
    offset += max(count - 1, 0) * 7  # api_key, min, max (int16 each) and an empty tag section
    offset += 4  # throttle_time_ms
    return frame[:offset] + b"\x00"


def _uvarint(data: bytes, offset: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[offset]
        offset += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, offset
        shift += 7


async def _read_frame(reader: asyncio.StreamReader) -> bytes:
    size = struct.unpack(">i", await reader.readexactly(4))[0]
    return await reader.readexactly(size)


async def _pipe_requests(reader, writer, flexible: set[int]) -> None:
    while True:
        frame = await _read_frame(reader)
        api_key, api_version, correlation = struct.unpack(">hhi", frame[:8])
        if api_key == API_VERSIONS and api_version >= 3:
            flexible.add(correlation)
        writer.write(struct.pack(">i", len(frame)) + frame)
        await writer.drain()


async def _pipe_responses(reader, writer, flexible: set[int]) -> None:
    while True:
        frame = await _read_frame(reader)
        correlation = struct.unpack(">i", frame[:4])[0]
        if correlation in flexible:
            flexible.discard(correlation)
            frame = strip_tagged_fields(frame)
        writer.write(struct.pack(">i", len(frame)) + frame)
        await writer.drain()


@contextlib.contextmanager
def apiversions_proxy(listen_port: int, upstream_port: int) -> Iterator[None]:
    loop = asyncio.new_event_loop()
    ready = threading.Event()

    async def handle(client_reader, client_writer):
        upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", upstream_port)
        flexible: set[int] = set()
        tasks = [
            asyncio.create_task(_pipe_requests(client_reader, upstream_writer, flexible)),
            asyncio.create_task(_pipe_responses(upstream_reader, client_writer, flexible)),
        ]
        await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        for task in tasks:
            task.cancel()
        for w in (client_writer, upstream_writer):
            w.close()

    async def serve():
        server = await asyncio.start_server(handle, "127.0.0.1", listen_port)
        ready.set()
        async with server:
            with contextlib.suppress(asyncio.CancelledError):
                await server.serve_forever()

    thread = threading.Thread(target=lambda: loop.run_until_complete(serve()), daemon=True)
    thread.start()
    ready.wait(10)
    try:
        yield
    finally:
        loop.call_soon_threadsafe(lambda: [t.cancel() for t in asyncio.all_tasks(loop)])
        thread.join(5)
