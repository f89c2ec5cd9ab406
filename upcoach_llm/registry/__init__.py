"""The model-registry service: server and edge model catalog, availability per backend, pulls."""
