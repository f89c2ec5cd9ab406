"""GET /api/models/edge and POST /api/inference/decide, and the same over grpc-web, through the
real gateway, model-registry and router processes.

The hybrid decision's truth table is written out here from the guide's _shouldUseOnDevice (not
computed with the function under test) and checked over REST and over grpc-web: every mode ×
online/offline × short/long prompt × on-device model present or not.
"""

from __future__ import annotations

import uuid

import httpx
import pytest
from connectrpc.code import Code
from connectrpc.errors import ConnectError
from connectrpc.protocol import ProtocolType

from upcoach_llm.api import (
    model_registry_connect,
    model_registry_pb2,
    router_connect,
    router_pb2,
)
from upcoach_llm.api.names import INFERENCE_MODE_VALUES, INFERENCE_TARGET_VALUES

pytestmark = pytest.mark.integration
SHORT = "Quick tip for focus?"
LONG = ("I keep starting new habits and dropping them after a week or two. Explain why this "
        "keeps happening and build me a realistic plan for the next month, with one small "
        "step per week and a way to track progress that I will not abandon.")
D, S = "on_device", "server"
# (mode, server_available, on_device_available) -> (short prompt, long prompt)
TABLE = {
    ("serverOnly", True, True): (S, S), ("serverOnly", False, True): (S, S),
    ("serverOnly", True, False): (S, S), ("serverOnly", False, False): (S, S),
    ("onDeviceOnly", True, True): (D, D), ("onDeviceOnly", False, True): (D, D),
    ("onDeviceOnly", True, False): (D, D), ("onDeviceOnly", False, False): (D, D),
    ("onDevicePreferred", True, True): (D, D), ("onDevicePreferred", False, True): (D, D),
    ("onDevicePreferred", True, False): (S, S), ("onDevicePreferred", False, False): (S, S),
    ("serverPreferred", True, True): (S, S), ("serverPreferred", False, True): (D, D),
    ("serverPreferred", True, False): (S, S), ("serverPreferred", False, False): (S, S),
    ("auto", True, True): (D, S), ("auto", False, True): (D, D),
    ("auto", True, False): (D, S), ("auto", False, False): (D, D),
}
CASES = [(*key, prompt, TABLE[key][i]) for key in TABLE for i, prompt in enumerate((SHORT, LONG))]
IDS = [f"{m}-{'online' if up else 'offline'}-{'device' if dev else 'nodevice'}-"
       f"{'short' if p == SHORT else 'long'}" for m, up, dev, p, _ in CASES]


@pytest.fixture(scope="module")
def gateway_url(stack_factory) -> str:
    stack = stack_factory(["model-registry", "router", "gateway"], env={
        "ROUTER_STARTUP_WAIT_S": "0", "RATE_LIMIT_RPM": "0",
        "REDIS_KEY_PREFIX": f"upcoach:test:{uuid.uuid4().hex[:12]}:"})
    return f"http://{stack.spec('gateway').address}"


@pytest.fixture(scope="module")
def http(gateway_url):
    with httpx.Client(base_url=gateway_url, timeout=10) as client:
        yield client


def test_edge_models_for_a_device_with_formats_and_default(http) -> None:
    reply = http.get("/api/models/edge", params={"platform": "ios", "ram_gb": "4"})
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert (body["platform"], body["ram_gb"], body["default_model"]) == ("ios", 4, "tinyllama-1.1b")
    assert [m["id"] for m in body["models"]] == ["tinyllama-1.1b", "smollm-360m"]
    tiny = body["models"][0]
    assert {f["format"] for f in tiny["formats"]} == {"onnx", "coreml"}
    onnx = next(f for f in tiny["formats"] if f["format"] == "onnx")
    assert onnx == {"format": "onnx", "url": "https://models.upcoach.com/tinyllama-1.1b-q4.onnx",
                    "size_mb": 580, "quantization": "int4", "sha256": None}
    assert tiny["min_device_ram_gb"] == 3 and tiny["max_context"] == 2048


def test_a_small_device_gets_the_low_memory_default(http) -> None:
    body = http.get("/api/models/edge", params={"platform": "android", "ram_gb": "2"}).json()
    assert [m["id"] for m in body["models"]] == ["smollm-360m"]
    assert body["default_model"] == "smollm-360m"
    assert all(f["format"] != "coreml" for m in body["models"] for f in m["formats"])


@pytest.mark.parametrize(("params", "param"), [
    ({"platform": "windows", "ram_gb": "4"}, "platform"),
    ({"ram_gb": "4"}, "platform"),
    ({"platform": "ios", "ram_gb": "-1"}, "ram_gb"),
    ({"platform": "ios", "ram_gb": "lots"}, "ram_gb"),
    ({"platform": "ios"}, "ram_gb"),
])
def test_bad_platform_or_ram_is_400_naming_it(http, params, param) -> None:
    reply = http.get("/api/models/edge", params=params)
    assert reply.status_code == 400
    error = reply.json()["error"]
    assert error["param"] == param and error["message"].startswith(f"{param}:")
    assert error["type"] == "invalid_request_error"


@pytest.mark.parametrize(("mode", "server", "device", "prompt", "target"), CASES, ids=IDS)
def test_decision_truth_table_over_rest(http, mode, server, device, prompt, target) -> None:
    reply = http.post("/api/inference/decide", json={
        "mode": mode, "prompt": prompt, "server_available": server,
        "on_device_available": device})
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["target"] == target and body["use_on_device"] == (target == D)
    assert body["reason"].startswith(f"{mode}:")
    assert body["simple_query"] == (prompt == SHORT)


@pytest.mark.parametrize(("mode", "server", "device", "prompt", "target"), CASES, ids=IDS)
async def test_decision_truth_table_over_grpc_web(gateway_url, mode, server, device, prompt,
                                                  target) -> None:
    client = router_connect.RouterServiceClient(gateway_url, protocol=ProtocolType.GRPC_WEB)
    reply = await client.decide_inference(router_pb2.DecideInferenceRequest(
        mode=INFERENCE_MODE_VALUES[mode], prompt=prompt, server_available=server,
        on_device_available=device))
    assert reply.target == INFERENCE_TARGET_VALUES[target] and reply.reason.startswith(f"{mode}:")


def test_the_prompt_length_limit_can_be_set_per_request(http) -> None:
    body = {"mode": "auto", "prompt": SHORT, "server_available": True}
    assert http.post("/api/inference/decide", json=body).json()["target"] == D
    tight = http.post("/api/inference/decide",
                      json={**body, "on_device_max_prompt_length": 5}).json()
    assert tight["target"] == S and "long prompt" in tight["reason"]


@pytest.mark.parametrize(("body", "param"), [
    ({"mode": "sometimes", "prompt": "hi"}, "mode"),
    ({"mode": "auto"}, "prompt"),
    ({"mode": "auto", "prompt": "hi", "on_device_max_prompt_length": 0},
     "on_device_max_prompt_length"),
    ({"mode": "auto", "prompt": "hi", "connected": True}, "connected"),
    ({"mode": "auto", "prompt": "hi", "server_available": "no"}, "server_available"),
    ({"mode": "auto", "prompt": "hi", "on_device_available": 0}, "on_device_available"),
    ({"mode": "auto", "prompt": "hi", "on_device_max_prompt_length": "5"},
     "on_device_max_prompt_length"),
])
def test_a_bad_decision_request_is_400_naming_the_field(http, body, param) -> None:
    reply = http.post("/api/inference/decide", json=body)
    assert reply.status_code == 400
    assert reply.json()["error"]["param"] == param


async def test_edge_models_over_grpc_web(gateway_url) -> None:
    client = model_registry_connect.ModelRegistryServiceClient(
        gateway_url, protocol=ProtocolType.GRPC_WEB)
    reply = await client.list_edge_models(model_registry_pb2.ListEdgeModelsRequest(
        platform=model_registry_pb2.PLATFORM_ANDROID, ram_gb=8))
    assert reply.default_model_id == "tinyllama-1.1b"
    assert [f.format for f in reply.models[0].formats] == ["onnx"]
    with pytest.raises(ConnectError) as caught:
        await client.list_edge_models(model_registry_pb2.ListEdgeModelsRequest(
            platform=model_registry_pb2.PLATFORM_IOS, ram_gb=0))
    assert caught.value.code == Code.INVALID_ARGUMENT
