"""The Ollama contract double answers with the shapes of Ollama's documented API, over real HTTP."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator

import httpx
import pytest

from tests.doubles.ollama_double import OllamaDouble


@pytest.fixture
def ollama() -> Iterator[OllamaDouble]:
    with OllamaDouble(installed=["mistral", "nomic-embed-text"]) as double:
        yield double


def ndjson(response: httpx.Response) -> list[dict]:
    return [json.loads(line) for line in response.text.splitlines() if line.strip()]


def test_root_version_and_tags(ollama: OllamaDouble) -> None:
    assert httpx.get(ollama.url).text == "Ollama is running"
    assert httpx.get(f"{ollama.url}/api/version").json()["version"]
    models = httpx.get(f"{ollama.url}/api/tags").json()["models"]
    assert [m["name"] for m in models] == ["mistral:latest", "nomic-embed-text:latest"]
    first = models[0]
    assert {"name", "model", "modified_at", "size", "digest", "details"} <= set(first)
    assert first["size"] > 0 and first["details"]["format"] == "gguf"


def test_chat_streams_ndjson_then_final_statistics(ollama: OllamaDouble) -> None:
    body = {"model": "mistral", "messages": [{"role": "user", "content": "a tip please"}]}
    with httpx.stream("POST", f"{ollama.url}/api/chat", json=body) as response:
        assert response.headers["content-type"] == "application/x-ndjson"
        lines = [json.loads(line) for line in response.iter_lines() if line]
    *chunks, final = lines
    assert len(chunks) > 3
    assert all(c["done"] is False and c["message"]["role"] == "assistant" for c in chunks)
    assert all({"model", "created_at"} <= set(c) for c in chunks)
    assert "".join(c["message"]["content"] for c in chunks).startswith("Start small")
    assert final["done"] is True and final["done_reason"] == "stop"
    for key in ("total_duration", "load_duration", "prompt_eval_count", "prompt_eval_duration",
                "eval_count", "eval_duration"):
        assert isinstance(final[key], int), key
    assert final["eval_count"] == len(chunks)


def test_chat_without_stream_and_with_num_predict(ollama: OllamaDouble) -> None:
    body = {"model": "mistral:latest", "stream": False, "options": {"num_predict": 3},
            "messages": [{"role": "user", "content": "hi"}]}
    reply = httpx.post(f"{ollama.url}/api/chat", json=body).json()
    assert reply["done"] is True and reply["done_reason"] == "length"
    assert reply["eval_count"] == 3
    assert reply["message"]["content"] == "Start small: pick "


def test_chat_on_a_model_not_pulled_is_404_with_ollamas_message(ollama: OllamaDouble) -> None:
    reply = httpx.post(f"{ollama.url}/api/chat", json={"model": "llama3.2:3b", "messages": []})
    assert reply.status_code == 404
    assert reply.json() == {"error": 'model "llama3.2:3b" not found, try pulling it first'}


def test_embed_one_and_many(ollama: OllamaDouble) -> None:
    one = httpx.post(f"{ollama.url}/api/embed",
                     json={"model": "nomic-embed-text", "input": "morning routine"}).json()
    assert one["model"] == "nomic-embed-text" and len(one["embeddings"]) == 1
    assert len(one["embeddings"][0]) == 768 and one["prompt_eval_count"] == 2
    texts = ["build a morning routine", "a morning routine to build", "quarterly tax filing"]
    many = httpx.post(f"{ollama.url}/api/embed",
                      json={"model": "nomic-embed-text", "input": texts}).json()["embeddings"]

    def cosine(a: list[float], b: list[float]) -> float:
        return sum(x * y for x, y in zip(a, b, strict=True))

    assert math.isclose(cosine(many[0], many[0]), 1.0, rel_tol=1e-6)
    assert cosine(many[0], many[1]) > 0.7 > cosine(many[0], many[2])


def test_pull_streams_progress_and_installs(ollama: OllamaDouble) -> None:
    reply = httpx.post(f"{ollama.url}/api/pull", json={"model": "llama3.2:3b"})
    lines = ndjson(reply)
    assert lines[0] == {"status": "pulling manifest"}
    layers = [line for line in lines if "digest" in line]
    assert layers and all(line["digest"].startswith("sha256:") and line["total"] > 0
                          for line in layers)
    assert any(line.get("completed") == line["total"] for line in layers)
    assert [line["status"] for line in lines[-3:]] == [
        "verifying sha256 digest", "writing manifest", "success"]
    assert "llama3.2:3b" in ollama.installed()


def test_pull_unknown_model_streams_an_error(ollama: OllamaDouble) -> None:
    lines = ndjson(httpx.post(f"{ollama.url}/api/pull", json={"model": "no-such-model"}))
    assert lines[0] == {"status": "pulling manifest"}
    assert "error" in lines[-1] and "file does not exist" in lines[-1]["error"]
    reply = httpx.post(f"{ollama.url}/api/pull", json={"model": "no-such", "stream": False})
    assert reply.status_code == 500 and "error" in reply.json()


def test_create_from_a_base_then_show(ollama: OllamaDouble) -> None:
    body = {"model": "upcoach-assistant", "from": "mistral", "system": "You are a coach.",
            "parameters": {"temperature": 0.7}}
    lines = ndjson(httpx.post(f"{ollama.url}/api/create", json=body))
    assert lines[-1] == {"status": "success"}
    shown = httpx.post(f"{ollama.url}/api/show", json={"model": "upcoach-assistant"}).json()
    assert shown["system"] == "You are a coach."
    assert shown["details"]["parent_model"] == "mistral:latest"
    assert "FROM mistral:latest" in shown["modelfile"]


def test_create_with_a_legacy_modelfile(ollama: OllamaDouble) -> None:
    modelfile = 'FROM mistral\nSYSTEM """Be kind.\nBe brief."""\nPARAMETER num_ctx 4096\n'
    reply = httpx.post(f"{ollama.url}/api/create",
                       json={"model": "coach", "modelfile": modelfile, "stream": False})
    assert reply.json() == {"status": "success"}
    shown = httpx.post(f"{ollama.url}/api/show", json={"model": "coach"}).json()
    assert shown["system"] == "Be kind.\nBe brief." and "num_ctx 4096" in shown["parameters"]


def test_create_needs_an_installed_base(ollama: OllamaDouble) -> None:
    reply = httpx.post(f"{ollama.url}/api/create", json={"model": "x", "from": "llama3.2:3b"})
    assert reply.status_code == 404 and "try pulling it first" in reply.json()["error"]


def test_fail_next_is_used_once_and_can_target_a_path(ollama: OllamaDouble) -> None:
    ollama.fail_next(503, "overloaded", path="/api/tags")
    assert httpx.get(f"{ollama.url}/api/version").status_code == 200
    failed = httpx.get(f"{ollama.url}/api/tags")
    assert failed.status_code == 503 and failed.json() == {"error": "overloaded"}
    assert httpx.get(f"{ollama.url}/api/tags").status_code == 200


def test_cut_stream_drops_the_connection(ollama: OllamaDouble) -> None:
    ollama.cut_next_stream(after=2)
    body = {"model": "mistral", "messages": [{"role": "user", "content": "hi"}]}
    received = []
    with pytest.raises(httpx.RemoteProtocolError), \
            httpx.stream("POST", f"{ollama.url}/api/chat", json=body) as response:
        received.extend(line for line in response.iter_lines() if line)
    assert len(received) == 2
    assert httpx.post(f"{ollama.url}/api/chat", json={**body, "stream": False}).json()["done"]


def test_malformed_line_is_written_once(ollama: OllamaDouble) -> None:
    ollama.malformed_next_stream(after=1)
    lines = httpx.post(f"{ollama.url}/api/chat", json={
        "model": "mistral", "messages": [{"role": "user", "content": "hi"}]}).text.splitlines()
    with pytest.raises(json.JSONDecodeError):
        json.loads(lines[1])
    assert json.loads(lines[-1])["done"] is True


def test_requests_are_recorded(ollama: OllamaDouble) -> None:
    httpx.post(f"{ollama.url}/api/show", json={"model": "mistral"})
    assert ollama.requests[-1].path == "/api/show"
    assert ollama.requests[-1].body == {"model": "mistral"}


def test_format_makes_the_reply_json_and_a_bad_format_is_400(ollama: OllamaDouble) -> None:
    ask = {"model": "mistral", "stream": False, "messages": [{"role": "user", "content": "hi"}]}
    reply = httpx.post(f"{ollama.url}/api/chat", json={**ask, "format": "json"}).json()
    assert json.loads(reply["message"]["content"])["reply"].startswith("Start small")
    schema = {"type": "object", "properties": {"tip": {"type": "string"},
                                               "done": {"type": "boolean"}}}
    reply = httpx.post(f"{ollama.url}/api/chat", json={**ask, "format": schema}).json()
    parsed = json.loads(reply["message"]["content"])
    assert set(parsed) == {"tip", "done"} and parsed["done"] is True
    bad = httpx.post(f"{ollama.url}/api/chat", json={**ask, "format": "yaml"})
    assert bad.status_code == 400 and "invalid format" in bad.json()["error"]
