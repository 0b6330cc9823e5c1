"""``python -m sandbox --port 8025 [--state FILE]``: serve the provider sandbox over HTTPS."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
from pathlib import Path

import uvicorn

from .app import Sandbox, create_app
from .store import Store
from .tls import ensure_tls_files


def build_sandbox(*, ca_dir: Path, port: int, host: str = "localhost", latency_ms: float = 0.0) -> Sandbox:
    from .google import GoogleEmulator
    from .microsoft import MicrosoftEmulator

    files = ensure_tls_files(ca_dir)
    sandbox = Sandbox(Store(), ca_path=files.ca_cert, base_url=f"https://{host}:{port}",
                      latency_ms=latency_ms)
    sandbox.register(MicrosoftEmulator(sandbox))
    sandbox.register(GoogleEmulator(sandbox))
    return sandbox


class IdleConnectionsAtStop(logging.Filter):
    """uvicorn says "Cancel 0 running task(s), timeout graceful shutdown exceeded" at ERROR when a
    client (a browser, a worker between requests) still holds an idle keep-alive TLS connection as
    the sandbox stops: asyncio waits for the client's close_notify, which an idle client never
    sends. No request was cut off, so it is not an error; with requests in flight it still is."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno == logging.ERROR and record.getMessage().startswith("Cancel 0 running task(s)"):
            record.levelno, record.levelname = logging.INFO, "INFO"
            return logging.getLogger(record.name).isEnabledFor(logging.INFO)
        return True


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m sandbox", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8025)
    parser.add_argument("--state", type=Path, help="keep state in this JSON file across restarts")
    parser.add_argument("--ca-dir", type=Path, default=Path(".sandbox"), help="where the local CA lives")
    parser.add_argument("--log-level", default="warning")
    parser.add_argument("--latency-ms", type=float, default=float(os.environ.get("SANDBOX_LATENCY_MS") or 0),
                        help="wait this long in every provider call, as a real network would (default "
                             "$SANDBOX_LATENCY_MS or 0)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper())

    sandbox = build_sandbox(ca_dir=args.ca_dir, port=args.port, latency_ms=args.latency_ms)
    if args.state and args.state.exists():
        sandbox.store.load(args.state.read_text())
    files = ensure_tls_files(args.ca_dir)
    print(f"sandbox: https://localhost:{args.port}  CA: {files.ca_cert.resolve()}", flush=True)

    config = uvicorn.Config(
        create_app(sandbox),
        host=args.host,
        port=args.port,
        ssl_certfile=str(files.server_cert),
        ssl_keyfile=str(files.server_key),
        log_level=args.log_level,
        access_log=False,
        lifespan="off",
        loop="uvloop",
        http="httptools",
        timeout_keep_alive=30,
        # Idle keep-alive connections must not hold up a stop.
        timeout_graceful_shutdown=2,
    )
    logging.getLogger("uvicorn.error").addFilter(IdleConnectionsAtStop())
    server = uvicorn.Server(config)

    async def serve() -> None:
        saver = None
        if args.state:

            async def save_periodically() -> None:
                while True:
                    await asyncio.sleep(5)
                    sandbox.store.save_to(args.state)

            saver = asyncio.get_running_loop().create_task(save_periodically())
        try:
            await server.serve()
        finally:
            if saver:
                saver.cancel()
            if args.state:
                sandbox.store.save_to(args.state)

    # uvicorn handles SIGINT and SIGTERM itself: it stops serving and the state is saved.
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve())


if __name__ == "__main__":
    main()
