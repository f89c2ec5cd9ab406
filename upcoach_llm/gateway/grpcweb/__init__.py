"""grpc-web and Connect for the mobile app, on the gateway's own port.

The app-facing RPCs of RouterService, EmbeddingService and ModelRegistryService are served by
connectrpc's ASGI apps, each implemented by proxying to the matching gRPC service.
"""

from upcoach_llm.gateway.grpcweb.dispatch import PATH_PREFIX, Dispatcher
from upcoach_llm.gateway.grpcweb.services import build_apps

__all__ = ["PATH_PREFIX", "Dispatcher", "build_apps"]
