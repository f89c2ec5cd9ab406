"""The backend pool: fallbacks over healthy backends, least outstanding first, circuit breaking."""

from __future__ import annotations

import asyncio

import pytest
from prometheus_client import REGISTRY

from upcoach_llm.common.backends import BackendConfig
from upcoach_llm.common.errors import Unavailable
from upcoach_llm.engines.base import EngineHealth
from upcoach_llm.router.backend_pool import (
    REPROBE_GAP_S,
    REPROBE_WAIT_S,
    BackendPool,
    NoHealthyBackend,
)

CHAIN = ["mistral", "llama3.2:3b", "smollm2-135m-instruct"]


def backend(name: str, *models: str, kind: str = "openai") -> BackendConfig:
    url = None if kind == "embedded" else f"http://{name}:8000"
    return BackendConfig(name=name, type=kind, url=url, models=list(models))


def pool_with(health: dict[str, EngineHealth], *configs: BackendConfig) -> BackendPool:
    async def prober(config: BackendConfig) -> EngineHealth:
        return health[config.name]

    return BackendPool(list(configs), prober, interval=60)


async def test_falls_back_to_a_served_model_and_reports_skips() -> None:
    pool = pool_with({"embedded": EngineHealth(True, ("smollm2-135m-instruct",))},
                     backend("embedded", "smollm2-135m-instruct", kind="embedded"))
    await pool.probe_all()
    resolution = pool.resolve(CHAIN)
    assert resolution.model == "smollm2-135m-instruct"
    assert resolution.skipped == ["mistral", "llama3.2:3b"]
    assert [s.name for s in resolution.candidates] == ["embedded"]


async def test_prefers_the_requested_model_when_served() -> None:
    health = {"vllm": EngineHealth(True, ("mistral",)),
              "embedded": EngineHealth(True, ("smollm2-135m-instruct",))}
    pool = pool_with(health, backend("vllm", "mistral"),
                     backend("embedded", "smollm2-135m-instruct", kind="embedded"))
    await pool.probe_all()
    assert pool.resolve(CHAIN).model == "mistral"
    health["vllm"] = EngineHealth(False, detail="connection refused")
    await pool.probe_all()
    resolution = pool.resolve(CHAIN)
    assert resolution.model == "smollm2-135m-instruct"
    assert pool.states[0].detail == "connection refused"


async def test_least_outstanding_then_in_turn() -> None:
    health = {"a": EngineHealth(True, ("mistral",)), "b": EngineHealth(True, ("mistral",))}
    pool = pool_with(health, backend("a", "mistral"), backend("b", "mistral"))
    await pool.probe_all()
    first = pool.resolve(["mistral"]).candidates[0]
    with pool.track(first):
        busy = pool.resolve(["mistral"]).candidates
        assert [s.name for s in busy] != [first.name] and busy[0] is not first
    # Equal load: the one picked less recently goes first, and a pick counts from its
    # resolution (a burst resolved before any request starts still goes round).
    burst = [pool.resolve(["mistral"], pick=True).candidates[0].name for _ in range(4)]
    assert burst[0] != burst[1] and burst[:2] == burst[2:]
    queried = [pool.resolve(["mistral"]).candidates[0].name for _ in range(3)]
    assert len(set(queried)) == 1, "a query (Route) is not a pick"


async def test_mark_down_opens_the_circuit_until_a_good_probe() -> None:
    health = {"a": EngineHealth(True, ("mistral",)), "b": EngineHealth(True, ("mistral",))}
    pool = pool_with(health, backend("a", "mistral"), backend("b", "mistral"))
    await pool.probe_all()
    pool.mark_down(pool.states[0], "reset by peer")
    assert [s.name for s in pool.resolve(["mistral"]).candidates] == ["b"]
    await pool.probe_all()
    assert len(pool.resolve(["mistral"]).candidates) == 2


async def test_a_probe_older_than_a_mark_down_does_not_close_the_circuit() -> None:
    release = asyncio.Event()

    async def slow_prober(config: BackendConfig) -> EngineHealth:
        await release.wait()
        return EngineHealth(True, ("mistral",))

    pool = BackendPool([backend("a", "mistral")], slow_prober, interval=60)
    release.set()
    await pool.probe_all()
    release.clear()
    probing = asyncio.ensure_future(pool.probe_all())
    await asyncio.sleep(0.01)  # the probe is out, then a request finds the backend gone
    pool.mark_down(pool.states[0], "reset by peer")
    release.set()
    await probing
    assert not pool.states[0].healthy and pool.states[0].detail == "reset by peer"
    await pool.probe_all()
    assert pool.states[0].healthy


async def test_an_openai_server_serves_only_what_its_models_list_reports() -> None:
    health = {"vllm": EngineHealth(True, ("mistral",)),
              "embedded": EngineHealth(True, ("smollm2-135m-instruct",))}
    pool = pool_with(health, backend("vllm", "mistral", "llama3.2:3b"),
                     backend("embedded", "smollm2-135m-instruct", kind="embedded"))
    await pool.probe_all()
    resolution = pool.resolve(["llama3.2:3b", "smollm2-135m-instruct"])
    assert (resolution.model, resolution.skipped) == ("smollm2-135m-instruct", ["llama3.2:3b"])
    with pytest.raises(Unavailable, match=r"vllm \(llama3.2:3b is not among the models it "
                                          r"serves now \(mistral\)\)"):
        pool.resolve(["llama3.2:3b"])


async def test_nothing_served_is_unavailable_naming_the_backends() -> None:
    pool = pool_with({"a": EngineHealth(False, detail="refused")}, backend("a", "mistral"))
    await pool.probe_all()
    with pytest.raises(Unavailable, match=r"no healthy backend serves mistral: a \(refused\)"):
        pool.resolve(["mistral"])
    with pytest.raises(Unavailable, match="none of llama3.2:3b is served in this environment"):
        pool.resolve(["llama3.2:3b"])


async def test_ollama_serves_what_its_probe_reports_installed() -> None:
    pool = pool_with({"ollama": EngineHealth(True, ("llama3.2:3b",))},
                     BackendConfig(name="ollama", type="ollama", url="http://o:11434"))
    await pool.probe_all()
    assert pool.resolve(CHAIN).model == "llama3.2:3b"


async def test_ollama_configured_for_a_model_it_has_not_pulled_is_skipped() -> None:
    health = {"ollama": EngineHealth(True, ("llama3.2:3b",)),
              "embedded": EngineHealth(True, ("smollm2-135m-instruct",))}
    pool = pool_with(health, backend("ollama", "mistral", "llama3.2:3b", kind="ollama"),
                     backend("embedded", "smollm2-135m-instruct", kind="embedded"))
    await pool.probe_all()
    resolution = pool.resolve(CHAIN)
    assert (resolution.model, resolution.skipped) == ("llama3.2:3b", ["mistral"])
    with pytest.raises(Unavailable, match=r"ollama \(mistral is not pulled there: ollama pull"):
        pool.resolve(["mistral"])


async def test_health_and_load_are_gauges_read_when_scraped() -> None:
    def gauge(name: str, **labels: str) -> float | None:
        return REGISTRY.get_sample_value(name, labels)

    health = {"gauge-a": EngineHealth(True), "gauge-b": EngineHealth(False, detail="refused")}
    pool = pool_with(health, backend("gauge-a", "mistral"),
                     backend("gauge-b", "mistral", kind="ollama"))
    up = {"gauge-a": {"backend_type": "openai"}, "gauge-b": {"backend_type": "ollama"}}
    assert [gauge("upcoach_router_backend_up", backend=n, **up[n]) for n in up] == [0, 0]
    await pool.probe_all()
    assert [gauge("upcoach_router_backend_up", backend=n, **up[n]) for n in up] == [1, 0]
    with pool.track(pool.states[0]):
        assert gauge("upcoach_router_backend_outstanding_requests", backend="gauge-a") == 1
    assert gauge("upcoach_router_backend_outstanding_requests", backend="gauge-a") == 0
    pool.mark_down(pool.states[0], "reset by peer")
    assert gauge("upcoach_router_backend_up", backend="gauge-a", backend_type="openai") == 0


async def test_a_refused_request_probes_its_chain_once_more_and_bursts_share_the_probe() -> None:
    health = {"embedded": EngineHealth(False, detail="not serving yet"),
              "vllm": EngineHealth(False, detail="connection refused")}
    probed: list[str] = []

    async def prober(config: BackendConfig) -> EngineHealth:
        probed.append(config.name)
        await asyncio.sleep(0.01)
        return health[config.name]

    pool = BackendPool([backend("embedded", "smollm2-135m-instruct", kind="embedded"),
                        backend("vllm", "mistral")], prober, interval=60)
    await pool.probe_all()
    probed.clear()
    with pytest.raises(NoHealthyBackend) as refused:
        pool.resolve(["smollm2-135m-instruct"])
    assert refused.value.chain == ["smollm2-135m-instruct"]
    health["embedded"] = EngineHealth(True, ("smollm2-135m-instruct",))
    resolved = await asyncio.gather(*(pool.resolve_fresh(["smollm2-135m-instruct"])
                                      for _ in range(5)))
    assert {r.model for r in resolved} == {"smollm2-135m-instruct"}
    assert probed == ["embedded"]  # one probe, of the chain's backend only


async def test_another_chain_does_not_ride_on_a_probe_of_other_backends() -> None:
    health = {"a": EngineHealth(False, detail="down"), "b": EngineHealth(False, detail="down")}
    probed: list[str] = []

    async def prober(config: BackendConfig) -> EngineHealth:
        probed.append(config.name)
        await asyncio.sleep(0.01)
        return health[config.name]

    pool = BackendPool([backend("a", "ma"), backend("b", "mb")], prober, interval=60)
    await pool.probe_all()
    probed.clear()
    health["b"] = EngineHealth(True, ("mb",))
    first, second = await asyncio.gather(pool.resolve_fresh(["ma"]), pool.resolve_fresh(["mb"]),
                                         return_exceptions=True)
    assert isinstance(first, NoHealthyBackend)
    assert second.model == "mb"
    assert sorted(probed) == ["a", "b"]


async def test_reprobes_are_spaced_and_leave_a_circuit_a_request_opened_to_the_round() -> None:
    health = {"embedded": EngineHealth(False, detail="not serving yet")}
    pool = pool_with(health, backend("embedded", "smollm2-135m-instruct", kind="embedded"))
    await pool.probe_all()
    assert await pool.reprobe(["smollm2-135m-instruct"])
    assert not await pool.reprobe(["smollm2-135m-instruct"])  # within REPROBE_GAP_S
    state = pool.states[0]
    state.reprobed_at -= REPROBE_GAP_S
    assert await pool.reprobe(["smollm2-135m-instruct"])
    state.reprobed_at -= REPROBE_GAP_S
    assert not await pool.reprobe(["mistral"])  # no backend is configured for it
    health["embedded"] = EngineHealth(True, ("smollm2-135m-instruct",))
    await pool.probe_all()
    pool.mark_down(state, "UNAVAILABLE from a chat")
    assert not await pool.reprobe(["smollm2-135m-instruct"])  # its cool-down: the round decides
    with pytest.raises(NoHealthyBackend):
        await pool.resolve_fresh(["smollm2-135m-instruct"])


async def test_a_probe_that_raises_or_hangs_leaves_the_request_refused_as_unavailable() -> None:
    async def raising(config: BackendConfig) -> EngineHealth:
        raise RuntimeError("prober bug")

    pool = BackendPool([backend("vllm", "mistral")], raising, interval=60)
    await pool.probe_all()
    assert pool.states[0].detail == "probe failed: RuntimeError"
    with pytest.raises(NoHealthyBackend):
        await pool.resolve_fresh(["mistral"])

    async def hanging(config: BackendConfig) -> EngineHealth:
        await asyncio.sleep(30)
        return EngineHealth(True, ("mistral",))

    pool = BackendPool([backend("vllm", "mistral")], hanging, interval=60)
    started = asyncio.get_running_loop().time()
    with pytest.raises(NoHealthyBackend):
        await pool.resolve_fresh(["mistral"])
    assert asyncio.get_running_loop().time() - started < REPROBE_WAIT_S + 0.5
    await pool.stop()  # cancels the probe still in flight
    assert pool.states[0].reprobe.cancelled()
