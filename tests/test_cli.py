"""The `panorama` command as a user runs it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from gateway.cli import main
from gateway.demo.run import DEMO_TOKEN_ENV
from gateway.demo.world import build_world
from tests.servers import running_crm, unused_port, wait_for

ROOT = Path(__file__).resolve().parent.parent
PANORAMA = str(Path(sys.executable).parent / "panorama")


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return build_world(tmp_path_factory.mktemp("cli-world"), customers=60, crm_url="http://unset")


def copy_world(world, folder: Path) -> None:
    """The demo's databases, secret and config, in a folder a test may change."""
    shutil.copytree(world.config_path.parent, folder, dirs_exist_ok=True)


def test_schema_prints_the_published_schema(capsys):
    assert main(["schema"]) == 0
    assert capsys.readouterr().out == (ROOT / "schema.graphql").read_text()


def test_check_lists_every_problem_and_fails(tmp_path, capsys):
    path = tmp_path / "panorama.yaml"
    path.write_text("sources:\n  shop:\n    kind: postgress\n    conection: {}\n")
    assert main(["check", "--config", str(path)]) == 1
    out = capsys.readouterr().out
    assert "sources.shop.kind: unknown connector kind 'postgress'" in out
    assert "did you mean 'connection'" in out
    assert "no customer mapping" in out
    assert "problem(s) found" in out


def test_check_connect_validates_live_sources(world, tmp_path, capsys, monkeypatch):
    with running_crm(world.crm_seed, token="t0k") as (url, _):
        config = tmp_path / "panorama.yaml"
        copy_world(world, tmp_path)
        text = world.config_path.read_text().replace("http://unset", url)
        config.write_text(text)
        monkeypatch.setenv(DEMO_TOKEN_ENV, "t0k")
        assert main(["check", "--config", str(config), "--connect"]) == 0
        assert "sources.crm: ok" in capsys.readouterr().out
        config.write_text(text.replace("courriel", "courrielx").replace("lastname", "lastnme"))
        assert main(["check", "--config", str(config), "--connect"]) == 1
        out = capsys.readouterr().out
    assert "courrielx" in out and "clients" in out and "courriel," in out.replace("courrielx", "")
    assert "lastnme" in out and "sources.crm" in out


def test_check_connect_reports_an_unreachable_source(world, tmp_path, capsys, monkeypatch):
    copy_world(world, tmp_path)
    config = tmp_path / "panorama.yaml"
    config.write_text(world.config_path.read_text().replace(
        "http://unset", f"http://127.0.0.1:{unused_port()}"))
    monkeypatch.setenv(DEMO_TOKEN_ENV, "t0k")
    assert main(["check", "--config", str(config), "--connect"]) == 1
    out = capsys.readouterr().out
    assert "sources.crm: cannot reach the source (SOURCE_UNAVAILABLE)" in out
    assert "sources.paris: ok" in out


def test_serve_refuses_a_bad_config_with_its_problems(tmp_path, capsys):
    path = tmp_path / "panorama.yaml"
    path.write_text("sources:\n  shop:\n    kind: sqlite\n    connection: {path: x.db, password: hunter2}\n")
    assert main(["serve", "--config", str(path)]) == 1
    err = capsys.readouterr().err
    assert "written inline" in err and "hunter2" not in err


def test_bad_setting_in_the_environment_is_named(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("PANORAMA_PORT", "eighty")
    assert main(["serve", "--config", str(tmp_path / "x.yaml")]) == 2
    assert "PANORAMA_PORT" in capsys.readouterr().err


def test_demo_command_serves_the_demo_and_its_example_queries(tmp_path):
    port, crm_port = unused_port(), unused_port()
    process = subprocess.Popen(
        [PANORAMA, "demo", "--dir", str(tmp_path / "demo"), "--port", str(port),
         "--crm-port", str(crm_port), "--customers", "60"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={k: v for k, v in os.environ.items() if not k.startswith("PANORAMA_")})
    try:
        url = f"http://127.0.0.1:{port}"
        wait_for(f"{url}/readyz", process)
        assert process.stdout is not None
        printed = []  # what the demo printed before it served: examples, tokens, a curl line
        while not printed or not printed[-1].startswith("From a shell:"):
            printed.append(process.stdout.readline())
        admin = next(line.split()[-1] for line in printed if line.startswith("  admin "))
        query = '{ customerByEmail(email: "camille.martin@example.fr") { sourceRecords { source } } }'
        refused = httpx.post(f"{url}/graphql", json={"query": query})
        answer = httpx.post(f"{url}/graphql", json={"query": query},
                            headers={"authorization": f"Bearer {admin}"}).json()
        assert {r["source"] for r in answer["data"]["customerByEmail"]["sourceRecords"]} == {
            "paris", "london", "berlin", "crm"}
        # The finance CSV, as the demo and the README say, from another terminal meanwhile.
        export = next(line for line in printed if line.startswith("Every account as CSV"))
        command = export.split(": ", 1)[1].strip().replace("accounts.csv",
                                                             str(tmp_path / "accounts.csv"))
        exported = subprocess.run(command.replace("panorama ", f"{PANORAMA} ", 2), shell=True,
                                  capture_output=True, text=True, timeout=120,
                                  env={k: v for k, v in os.environ.items()
                                       if not k.startswith("PANORAMA_")})
        assert exported.returncode == 0, exported.stderr
        lines = (tmp_path / "accounts.csv").read_text().splitlines()
        assert lines[0].startswith("customer_id,display_name") and "risk_class" in lines[0]
        assert len(lines) > 60 and "2025-12-31" in lines[1]
    finally:
        process.terminate()
        output, _ = process.communicate(timeout=10)
    assert refused.status_code == 401
    output = "".join(printed) + output
    assert "customerByEmail" in output and "customers(filter" in output  # the printed examples
    for role in ("finance", "marketing", "support", "shop staff (paris)", "customer (Camille"):
        assert f"\n  {role}" in output, role
    # the same customer as each role sees it: masked for shop staff, hidden parts named
    assert "shop staff (paris) [sale]\n  displayName   Camille Martin" in output
    assert "c***@example.fr" in output and "hidden        Customer.addresses" in output
    assert f"http://127.0.0.1:{port}/graphql" in output


def test_demo_refuses_a_port_in_use(tmp_path, capsys):
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert main(["demo", "--dir", str(tmp_path), "--port", str(port)]) == 1
    assert f"port {port} is already in use" in capsys.readouterr().err


def test_crm_server_command_serves_the_hubspot_api_with_a_token(tmp_path):
    port = unused_port()
    env = {**os.environ, "CRM_TOKEN": "s3cret-token"}
    process = subprocess.Popen([PANORAMA, "crm-server", "--port", str(port), "--token-env",
                                "CRM_TOKEN"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(f"{url}/healthz", process)
        search = {"filterGroups": [], "properties": ["email"], "limit": 2}
        refused = httpx.post(f"{url}/crm/v3/objects/contacts/search", json=search)
        answered = httpx.post(f"{url}/crm/v3/objects/contacts/search", json=search,
                              headers={"authorization": "Bearer s3cret-token"})
    finally:
        process.terminate()
        output, _ = process.communicate(timeout=10)
    assert refused.status_code == 401 and refused.json()["category"] == "INVALID_AUTHENTICATION"
    assert answered.status_code == 200 and len(answered.json()["results"]) == 2
    assert "s3cret-token" not in output


def test_crm_server_needs_its_token_variable(capsys, monkeypatch):
    monkeypatch.delenv("NO_SUCH_TOKEN", raising=False)
    assert main(["crm-server", "--token-env", "NO_SUCH_TOKEN"]) == 1
    assert "NO_SUCH_TOKEN is not set" in capsys.readouterr().err
