"""The model-registry service: the server and edge model catalog, availability per backend, pulls."""
