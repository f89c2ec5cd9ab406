"""Runs the model-registry service: ``python -m services.registry`` (port MODEL_REGISTRY_PORT)."""

from services.common.server import run
from services.registry.service import RegistryService

if __name__ == "__main__":
    run(RegistryService.from_env, name="model-registry", default_port=50053)
