"""Servers on loopback for tests: the CRM app on an ephemeral port, a port nobody listens on."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx
from starlette.applications import Starlette

from gateway.crm_server import create_crm_app, serve_in_background


@contextlib.contextmanager
def running_crm(seed: Mapping[str, Any], token: str | None = "test-token",
                **opts: Any) -> Iterator[tuple[str, Starlette]]:
    """Serve a CRM built from ``seed`` (``opts`` go to create_crm_app); yield (base_url, app)."""
    app = create_crm_app(seed, token=token, **opts)
    handle = serve_in_background(app)
    try:
        yield handle.url, app
    finally:
        handle.stop()


def unused_port() -> int:
    """A loopback port that nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(url: str, process: subprocess.Popen, seconds: float = 30) -> None:
    """Poll ``url`` until it answers 200, failing early (with its output) if ``process`` exits."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            output = process.stdout.read() if process.stdout else ""
            raise AssertionError(f"the process exited with {process.returncode}:\n{output}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{url} did not answer 200 within {seconds} s")


#: The CRM URL a test's demo world is built with, replaced by :func:`demo_config_copy`.
UNSET_CRM = "http://unset"


def demo_config_copy(world_config: Path, crm_url: str, folder: Path) -> Path:
    """A copy of a demo world's folder whose config points at ``crm_url`` (a test may edit it)."""
    shutil.copytree(world_config.parent, folder)
    path = folder / "panorama.yaml"
    path.write_text(path.read_text().replace(UNSET_CRM, crm_url))
    return path


def demo_world_fixtures(customers: int, token: str) -> tuple[Any, Any, Any]:
    """The fixtures ``world``, ``crm`` and ``config`` of a test module on the demo world:

        world, crm, config = demo_world_fixtures(customers=40, token=TOKEN)

    ``world``: built once per module; ``crm``: a CRM server of the test's own on loopback
    (``(url, app)``: its request log and fault queue start empty); ``config``: a copy of the demo
    config pointed at that CRM, which the test may edit.
    """
    import pytest

    from gateway.demo.world import build_world

    @pytest.fixture(scope="module")
    def world(tmp_path_factory: Any) -> Any:
        return build_world(tmp_path_factory.mktemp("world"), customers=customers,
                           crm_url=UNSET_CRM)

    @pytest.fixture
    def crm(world: Any) -> Iterator[tuple[str, Starlette]]:
        with running_crm(world.crm_seed, token=token) as (url, app):
            yield url, app

    @pytest.fixture
    def config(world: Any, crm: tuple[str, Starlette], tmp_path: Path) -> Path:
        return demo_config_copy(world.config_path, crm[0], tmp_path / "demo")

    return world, crm, config
