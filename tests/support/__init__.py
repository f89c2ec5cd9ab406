"""Helpers the tests share: in-process gRPC servers."""
