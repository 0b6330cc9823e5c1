"""``python -m sandbox.bench``: how fast the sandbox answers a simple GET over TLS keep-alive.

It starts its own sandbox process and drives it from one asyncio client process with N
concurrent keep-alive connections, each sending requests back to back (minimal HTTP/1.1 parsing,
so the client is not what limits the figure).
"""

from __future__ import annotations

import argparse
import asyncio
import ssl
import tempfile
import time
from pathlib import Path

from .runner import start_sandbox

PATH = "/_sandbox/health"


async def _client(host: str, port: int, context: ssl.SSLContext, deadline: float, counts: list[int]) -> None:
    reader, writer = await asyncio.open_connection(host, port, ssl=context, server_hostname="localhost")
    request = f"GET {PATH} HTTP/1.1\r\nHost: localhost:{port}\r\nConnection: keep-alive\r\n\r\n".encode()
    done = 0
    while time.monotonic() < deadline:
        writer.write(request)
        head = await reader.readuntil(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        await reader.readexactly(length)
        if not head.startswith(b"HTTP/1.1 200"):
            raise RuntimeError(head.decode(errors="replace"))
        done += 1
    counts.append(done)
    writer.close()


async def _run(port: int, ca: Path, clients: int, seconds: float) -> int:
    context = ssl.create_default_context(cafile=str(ca))
    counts: list[int] = []
    deadline = time.monotonic() + seconds
    await asyncio.gather(*(_client("127.0.0.1", port, context, deadline, counts) for _ in range(clients)))
    return sum(counts)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m sandbox.bench", description=__doc__)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        handle = start_sandbox(ca_dir=Path(tmp))
        try:
            asyncio.run(_run(handle.port, handle.ca_path, args.clients, 1.0))  # warm up
            started = time.monotonic()
            total = asyncio.run(_run(handle.port, handle.ca_path, args.clients, args.seconds))
            elapsed = time.monotonic() - started
        finally:
            handle.stop()
    print(f"sandbox: GET {PATH} over TLS keep-alive, {args.clients} concurrent clients, {elapsed:.1f} s")
    print(f"  requests: {total}   throughput: {total / elapsed:,.0f} requests/s")


if __name__ == "__main__":
    main()
