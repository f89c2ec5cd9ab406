"""UpCoach LLM gRPC services: router, generation, embedding and model-registry."""
