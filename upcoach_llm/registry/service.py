"""The model-registry service's wiring: catalog files, backends, servicer."""

from __future__ import annotations

import grpc

from upcoach_llm.api import model_registry_pb2, model_registry_pb2_grpc
from upcoach_llm.common.backends import load_backends
from upcoach_llm.common.catalog import load_edge_models, load_models
from upcoach_llm.common.server import GrpcService
from upcoach_llm.common.variables import VARIABLES
from upcoach_llm.registry.servicer import ModelRegistryServicer


class RegistryService(GrpcService):
    """Reads and validates the catalog at construction, so a bad file stops start-up."""

    def __init__(self, servicer: ModelRegistryServicer) -> None:
        self._servicer = servicer

    @classmethod
    def from_env(cls) -> RegistryService:
        catalog = load_models()
        servicer = ModelRegistryServicer(
            catalog, load_edge_models(), load_backends(catalog),
            probe_timeout=VARIABLES.float("REGISTRY_PROBE_TIMEOUT_S"))
        return cls(servicer)

    def service_names(self) -> list[str]:
        return [model_registry_pb2.DESCRIPTOR.services_by_name["ModelRegistryService"].full_name]

    def register(self, server: grpc.aio.Server) -> None:
        model_registry_pb2_grpc.add_ModelRegistryServiceServicer_to_server(self._servicer, server)
