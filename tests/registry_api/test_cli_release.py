"""`edgeloop models|versions|alias set|rollback|audit` against a real uvicorn registry."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from edgeloop.cli import main
from registry_api.testing import Server, create_keys, make_package, multipart

pytestmark = pytest.mark.slow
MODEL = "shelf-products"


@pytest.fixture()
def running(registry_env: Path, tmp_path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    import httpx

    tokens = create_keys()
    server = Server({**os.environ})
    server.start()
    try:
        auth = {"Authorization": f"Bearer {tokens['publisher']}"}
        for n in (1, 2):
            folder = make_package(tmp_path / f"v{n}", run=f"run-{n}")
            httpx.post(f"{server.url}/v1/models/{MODEL}/versions", files=multipart(folder), headers=auth, timeout=60)
        yield server.url, tokens
    finally:
        server.stop()


def test_the_release_commands(running: tuple[str, dict[str, str]], capsys: pytest.CaptureFixture[str]) -> None:
    url, tokens = running
    publisher = ["--registry", url, "--api-key", tokens["publisher"]]
    reader = ["--registry", url, "--api-key", tokens["reader"]]

    assert main(["alias", "set", MODEL, "canary", "1", "--reason", "first", *publisher]) == 0
    assert main(["alias", "set", MODEL, "canary", "2", "--rollout", "10", "--reason", "try v2", *publisher]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "canary -> v2 at 10 % (others: v1)"
    assert main(["alias", "set", MODEL, "canary", "1", "--reason", "sneaky", *reader]) != 0  # a reader may not act
    capsys.readouterr()

    assert main(["models", "--json", *reader]) == 0
    assert json.loads(capsys.readouterr().out)[0]["aliases"] == {"canary": 2}
    assert main(["versions", MODEL, *reader]) == 0
    table = capsys.readouterr().out
    assert "run-2" in table and "4/4" in table

    assert main(["rollback", MODEL, "canary", "--reason", "crashes", "--json", *publisher]) == 0
    assert json.loads(capsys.readouterr().out) == {
        "alias": "canary", "version": 1, "rollout_percent": 100, "previous_version": 2,
    }  # fmt: skip
    assert main(["audit", MODEL, "--json", *reader]) == 0
    log = json.loads(capsys.readouterr().out)
    assert [(e["action"], e["to_version"], e["reason"]) for e in log[:3]] == [
        ("rollback", 1, "crashes"), ("set_alias", 2, "try v2"), ("set_alias", 1, "first"),
    ]  # fmt: skip
    assert main(["audit", MODEL, *reader]) == 0
    assert "crashes" in capsys.readouterr().out
