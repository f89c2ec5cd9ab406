"""Tests: unit tests mirror the source tree; tests/integration starts real processes."""
