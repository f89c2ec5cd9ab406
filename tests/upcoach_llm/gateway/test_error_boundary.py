"""A bug in a handler answers 500 in the one shape and leaves the keep-alive connection usable."""

from __future__ import annotations

import asyncio
import logging

import pytest

from tests.upcoach_llm.gateway.conftest import RunningGateway
from tests.upcoach_llm.gateway.rawhttp import connect, exchange
from upcoach_llm.gateway.models import serving as models_serving


async def _broken(*_: object, **__: object) -> None:
    raise RuntimeError("secret detail of the bug")


async def test_handler_bug_keeps_the_connection(gateway, monkeypatch: pytest.MonkeyPatch,
                                                caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    gw: RunningGateway = await gateway()
    monkeypatch.setattr(models_serving, "catalog", _broken)
    reader, writer = await connect(gw.url)
    try:
        failed = await exchange(reader, writer, "GET", "/api/models")
        after = await asyncio.wait_for(exchange(reader, writer, "GET", "/metrics"), 5)
    finally:
        writer.close()
    assert failed.status == 500
    assert failed.json() == {"error": {"message": "internal error: RuntimeError",
                                       "type": "server_error", "param": None,
                                       "code": "internal"}}
    assert "close" not in failed.headers.get("connection", "")
    assert after.status == 200
    logged = [r for r in caplog.records if r.exc_info]
    assert len(logged) == 1
    assert logged[0].__dict__["fields"]["path"] == "/api/models"


async def test_bug_outside_the_rest_app_is_answered_by_the_boundary(
        gateway, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    gw: RunningGateway = await gateway()
    monkeypatch.setattr(gw.deps.gate, "admit", _broken)
    reader, writer = await connect(gw.url)
    try:
        failed = await exchange(reader, writer, "POST", "/v1/chat/completions",
                                b'{"messages": [{"role": "user", "content": "private words"}]}')
        after = await asyncio.wait_for(exchange(reader, writer, "GET", "/metrics"), 5)
    finally:
        writer.close()
    assert failed.status == 500
    assert failed.headers["content-type"] == "application/json"
    assert failed.json()["error"]["code"] == "internal"
    assert failed.json()["error"]["message"] == "internal error: RuntimeError"
    assert after.status == 200
    logged = [r for r in caplog.records if r.exc_info]
    assert len(logged) == 1
    assert logged[0].__dict__["fields"]["path"] == "/v1/chat/completions"
    assert "private words" not in caplog.text
