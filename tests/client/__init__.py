"""Tests of the upcoach_client package, against real service processes."""
