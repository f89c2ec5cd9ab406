"""The UpCoach LLM gateway: REST (OpenAI-compatible and coaching) and grpc-web on one port.

``python -m upcoach_llm.gateway`` serves, on GATEWAY_PORT (3100), the guide's REST API, the OpenAI
chat, embeddings and models endpoints, Prometheus metrics, and the app-facing gRPC services over
grpc-web and Connect. It talks gRPC to the router, embedding and model-registry services and
keeps its response cache and rate-limit budgets in Redis.
"""
