"""The demo world served for admin tests: a real gateway on loopback, the CRM beside it, and a
copy of the Chinook sample database to add as a new shop."""

from __future__ import annotations

import contextlib
import dataclasses
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from gateway.app import create_app
from gateway.config import load_config
from gateway.crm_server import serve_in_background
from gateway.demo.run import DEMO_TOKEN_ENV
from gateway.demo.world import build_world
from gateway.settings import Settings
from tests.gateway_client import ADMIN, token_for
from tests.servers import demo_config_copy, running_crm

CHINOOK = Path(__file__).resolve().parents[2] / "shared" / "data" / "chinook" / "sqlite.db"
CRM_TOKEN = "admin-world-token"
ENV = {DEMO_TOKEN_ENV: CRM_TOKEN}


@dataclasses.dataclass
class AdminWorld:
    url: str
    admin_token: str
    chinook_path: Path  # a copy next to the config: `connection.path` may name it relatively
    config_path: Path
    app: Any
    environ: dict[str, str]


@contextlib.contextmanager
def admin_gateway(folder: Path, customers: int = 160, environ: dict[str, str] | None = None,
                  **settings: Any) -> Iterator[AdminWorld]:
    """The demo world in ``folder``, its gateway served with uvicorn (lifespan on)."""
    world = build_world(folder / "world", customers=customers, crm_url="http://unset")
    env = {**ENV, **(environ or {})}
    with running_crm(world.crm_seed, token=CRM_TOKEN) as (crm_url, _):
        config_path = demo_config_copy(world.config_path, crm_url, folder / "demo")
        chinook = config_path.parent / "chinook.db"
        shutil.copyfile(CHINOOK, chinook)
        config = load_config(config_path, env)
        app = create_app(Settings.load(overrides={"config": str(config_path), **settings}),
                         config, environ=env)
        handle = serve_in_background(app, lifespan="on")
        try:
            yield AdminWorld(handle.url, token_for(ADMIN, config.auth), chinook, config_path,
                             app, env)
        finally:
            handle.stop()
