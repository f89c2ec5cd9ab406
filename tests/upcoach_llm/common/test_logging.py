"""common/logging.py: a URL as the logs show it (Redis, the OTLP collector)."""

from __future__ import annotations

import pytest

from upcoach_llm.common.logging import without_password


@pytest.mark.parametrize(("url", "shown"), [
    ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"),
    ("redis://:hunter2@redis:6379/0", "redis://***@redis:6379/0"),
    ("rediss://user:p@ss@redis.internal:6380/1", "rediss://***@redis.internal:6380/1"),
    ("redis://127.0.0.1:6379/0?password=hunter2", "redis://127.0.0.1:6379/0?password=***"),
    ("unix:///tmp/redis.sock?password=hunter2&db=0", "unix:///tmp/redis.sock?password=***&db=0"),
    ("redis://redis:6379?username=app&Password=hunter2&socket_timeout=1",
     "redis://redis:6379?username=***&Password=***&socket_timeout=1"),
    ("http://otel:hunter2@collector:4318", "http://***@collector:4318"),
])
def test_credentials_never_reach_the_logs(url: str, shown: str) -> None:
    assert without_password(url) == shown
    assert "hunter2" not in without_password(url)


def test_a_url_that_does_not_parse_is_not_shown() -> None:
    assert without_password("http://u:hunter2@[otel:4317") == "<a URL that does not parse>"
