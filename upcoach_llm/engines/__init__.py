"""Engines: the things that run models (embedded llama.cpp and ONNX Runtime, Ollama, vLLM)."""
