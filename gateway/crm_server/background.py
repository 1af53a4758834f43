"""Running the CRM app: in a background thread (tests, ``panorama demo``) or in the foreground."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import uvicorn
from starlette.types import ASGIApp

from gateway.crm_server.app import create_crm_app
from gateway.crm_server.demo import DEMO_SEED

STARTUP_TIMEOUT = 10.0


class ServerHandle:
    """A uvicorn server on its own thread and event loop; ``url`` has the real bound port."""

    def __init__(self, server: uvicorn.Server, thread: threading.Thread, url: str) -> None:
        self.server, self.thread, self.url = server, thread, url

    def stop(self, timeout: float = 5.0) -> None:
        """Ask the server to exit and wait for its thread."""
        self.server.should_exit = True
        self.thread.join(timeout)

    def __enter__(self) -> ServerHandle:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def serve_in_background(app: ASGIApp, host: str = "127.0.0.1", port: int = 0,
                        lifespan: str = "off") -> ServerHandle:
    """Serve ``app`` with uvicorn on a daemon thread; ``port=0`` picks a free port;
    ``lifespan="on"`` runs the app's start-up and shut-down (the gateway's).

    Returns once the server accepts connections; ``handle.stop()`` shuts it down.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP spelled out: asyncio sets TCP_NODELAY only on sockets that say so, and
    # without it every keep-alive answer waits 40 ms for a delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    bound_port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", lifespan=lifespan,  # type: ignore[arg-type]
                            access_log=False,
                            timeout_graceful_shutdown=1)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]},
                              name=f"crm-server-{bound_port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            sock.close()
            raise RuntimeError(f"the CRM server did not start on {host}:{bound_port}")
        time.sleep(0.005)
    shown = f"[{host}]" if family == socket.AF_INET6 else host
    return ServerHandle(server, thread, f"http://{shown}:{bound_port}")


def load_seed(path: str | Path) -> dict[str, Any]:
    """A seed from a JSON file (see :mod:`gateway.crm_server.store` for its shape)."""
    try:
        seed = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ValueError(f"cannot read CRM seed '{path}': {exc}") from exc
    if not isinstance(seed, Mapping) or not all(isinstance(v, list) for v in seed.values()):
        raise ValueError(f"CRM seed '{path}' must map object types to lists of objects")
    return dict(seed)


def run(host: str = "127.0.0.1", port: int = 8100, seed_path: str | Path | None = None,
        token: str | None = None, *, page_limit: int = 100, rate_limit: int | None = None) -> None:
    """Serve the CRM in the foreground until interrupted: ``panorama crm-server``.

    ``host``/``port``: where to listen (``--host``, ``--port``, default 127.0.0.1:8100).
    ``seed_path``: a JSON seed file (``--seed``); None serves the built-in demo seed
    (five contacts with notes and calls). ``token``: the bearer token clients must send; the
    CLI reads it from the environment variable named by ``--token-env`` (None: no auth).
    ``page_limit``, ``rate_limit``: as for :func:`create_crm_app`.
    """
    seed = load_seed(seed_path) if seed_path is not None else DEMO_SEED
    app = create_crm_app(seed, token=token, page_limit=page_limit, rate_limit=rate_limit)
    uvicorn.run(app, host=host, port=port, log_level="info")
