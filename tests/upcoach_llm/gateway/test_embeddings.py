"""Embeddings and content search through the gateway, against the embedding double."""

from __future__ import annotations

import base64
import struct

import pytest

from tests.upcoach_llm.gateway.conftest import RunningGateway


@pytest.mark.parametrize("path", ["/v1/embeddings", "/api/embeddings"])
async def test_embeddings_openai_shape(gateway, path: str) -> None:
    gw: RunningGateway = await gateway()
    async with gw.client() as client:
        reply = await client.post(path, json={"input": ["one", "three"],
                                              "model": "nomic-embed-text"})
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["object"] == "list"
    assert body["model"] == "all-minilm-l6-v2"
    assert [d["index"] for d in body["data"]] == [0, 1]
    assert body["data"][1]["embedding"] == [5.0, 0.5, -0.25, 1.0]
    assert body["usage"] == {"prompt_tokens": 2, "total_tokens": 2}
    assert list(gw.double.calls.embed[-1].texts) == ["one", "three"]


async def test_single_string_and_base64(gateway) -> None:
    gw: RunningGateway = await gateway()
    async with gw.client() as client:
        reply = await client.post("/v1/embeddings", json={"input": "four",
                                                          "encoding_format": "base64"})
    raw = base64.b64decode(reply.json()["data"][0]["embedding"])
    assert struct.unpack("<4f", raw) == (4.0, 0.5, -0.25, 1.0)


@pytest.mark.parametrize(("body", "status", "param"), [
    ({"input": []}, 400, "input"),
    ({"input": ["ok", " "]}, 400, "input"),
    ({"input": [1, 2, 3]}, 400, "input"),
    ({}, 400, "input"),
    ({"input": "x", "encoding_format": "int8"}, 400, "encoding_format"),
    ({"input": "x", "dimensions": 2}, 400, "dimensions"),
    ({"input": "x", "model": "gpt-embed"}, 404, "model"),
    ({"input": "x", "dimension": 2}, 400, "dimension"),  # a typo is named, not ignored
])
async def test_bad_embedding_requests(gateway, body: dict, status: int,
                                      param: str) -> None:
    gw: RunningGateway = await gateway()
    async with gw.client() as client:
        reply = await client.post("/v1/embeddings", json=body)
    assert reply.status_code == status, reply.text
    assert reply.json()["error"]["param"] == param


async def test_token_arrays_are_refused_saying_so(gateway) -> None:
    gw: RunningGateway = await gateway()
    async with gw.client() as client:
        for path, body in (("/v1/embeddings", {"input": [[1, 2, 3]]}),
                           ("/v1/embeddings", {"input": [1, 2, 3]}),
                           ("/api/embed", {"model": "nomic-embed-text", "input": [[5, 6]]})):
            reply = await client.post(path, json=body)
            assert reply.status_code == 400, reply.text
            error = reply.json()["error"]
            message = error if isinstance(error, str) else error["message"]
            assert "token arrays are not supported" in message, message


async def test_ollama_embed_refuses_truncate_false(gateway) -> None:
    gw: RunningGateway = await gateway()
    async with gw.client() as client:
        refused = await client.post("/api/embed", json={"model": "nomic-embed-text",
                                                         "input": "hi", "truncate": False})
        served = await client.post("/api/embed", json={"model": "nomic-embed-text",
                                                        "input": "hi", "truncate": True})
    assert refused.status_code == 400 and "truncate" in refused.json()["error"]
    assert served.status_code == 200


async def test_search(gateway) -> None:
    gw: RunningGateway = await gateway()
    async with gw.client() as client:
        reply = await client.post("/api/search", json={"query": "morning routine", "top_k": 3})
        bad = await client.post("/api/search", json={"query": "", "top_k": 3})
    assert reply.status_code == 200
    assert reply.json() == {"model": "all-minilm-l6-v2", "results": [
        {"id": "tip-1", "category": "habits", "title": "Start small",
         "text": "About morning routine", "tags": ["habits"], "score": 0.75}]}
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "query"
