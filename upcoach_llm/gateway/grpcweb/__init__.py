"""grpc-web and Connect for the mobile app, on the gateway's own port.

The app-facing RPCs of RouterService, EmbeddingService and ModelRegistryService are served by
connectrpc's ASGI apps (services.py ``build_apps``), each implemented by proxying to the matching
gRPC service; the chats through the chat pipeline. The package exports only the dispatch, which
imports nothing of the gateway, so that the relay and the pipeline may import status.py.
"""

from upcoach_llm.gateway.grpcweb.dispatch import PATH_PREFIX, Dispatcher

__all__ = ["PATH_PREFIX", "Dispatcher"]
