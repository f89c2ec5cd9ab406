"""Runs the model-registry service: ``python -m services.registry`` (its port: topology.py)."""

from services.common.server import run
from services.common.topology import MODEL_REGISTRY
from services.registry.service import RegistryService

if __name__ == "__main__":
    run(RegistryService.from_env, MODEL_REGISTRY)
