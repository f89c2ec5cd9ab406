"""Schemathesis against /openapi.json: what the document admits, the gateway answers as documented.

The gateway runs in this test's event loop in front of the scripted double (so no model is
needed); schemathesis generates requests from the document the gateway serves and sends them
over a real socket from a worker thread. Every operation in the document is exercised with its
examples, with valid requests and with requests that break the schema (see HYPOTHESIS_MAX_SIZE);
each answer must be no 5xx, a documented status, in a documented content type, matching the
documented schema (SSE streams event by event). Rate limiting is off (RATE_LIMIT_RPM=0) so that
the requests reach the handlers; the gate's 401, 429 and 503 are documented for every gated
operation and tested in test_auth_ratelimit.py.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.strategies import SearchStrategy
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.upcoach_llm.gateway.conftest import RunningGateway

EXAMPLES = 25
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance]
# Hypothesis draws no string longer than its buffer (8 KiB), so the negative run cannot break a
# longer maxLength (200_000 characters of a message); test_bad_input.py sends those strings.
HYPOTHESIS_MAX_SIZE = 8 * 1024

pytestmark = pytest.mark.timeout(180)


def without_long_max_lengths(node: Any) -> Any:
    """The document less the maxLength keywords above HYPOTHESIS_MAX_SIZE, for the negative run."""
    if isinstance(node, dict):
        return {key: without_long_max_lengths(value) for key, value in node.items()
                if not (key == "maxLength" and isinstance(value, int)
                        and value >= HYPOTHESIS_MAX_SIZE)}
    if isinstance(node, list):
        return [without_long_max_lengths(value) for value in node]
    return node


def check(strategy: SearchStrategy[schemathesis.Case], base_url: str,
          session: requests.Session) -> str | None:
    """Sends the cases of strategy; the first failure found, or None."""

    @settings(max_examples=EXAMPLES, derandomize=True, database=None, deadline=None,
              phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
    @given(case=strategy)
    def run(case: schemathesis.Case) -> None:
        case.call_and_validate(base_url=base_url, session=session, checks=CHECKS, timeout=10)

    try:
        run()
    except (Exception, BaseExceptionGroup) as exc:  # noqa: BLE001 - the failure is the answer
        return str(exc)
    return None


def exercise(document: dict[str, Any], base_url: str) -> tuple[list[str], list[str]]:
    """Runs every operation of the document, and the examples it gives; returns (operations
    run, failures)."""
    schemas = {schemathesis.GenerationMode.POSITIVE: schemathesis.openapi.from_dict(document),
               schemathesis.GenerationMode.NEGATIVE: schemathesis.openapi.from_dict(
                   without_long_max_lengths(document))}
    ran: list[str] = []
    failures: list[str] = []
    with requests.Session() as session:
        for mode, schema in schemas.items():
            for result in schema.get_all_operations():
                operation = result.ok()
                if mode == schemathesis.GenerationMode.POSITIVE:
                    ran.append(operation.label)
                elif not operation.body and not any(operation.iter_parameters()):
                    continue  # nothing to send that could break the schema

                strategies = [operation.as_strategy(generation_mode=mode)]
                if mode == schemathesis.GenerationMode.POSITIVE:
                    strategies += operation.get_strategies_from_examples()
                for strategy in strategies:
                    failure = check(strategy, base_url, session)
                    if failure:
                        failures.append(f"{operation.label} ({mode.value}): {failure}")
    return ran, failures


async def test_the_gateway_answers_as_its_openapi_document_says(gateway) -> None:
    gw: RunningGateway = await gateway({"RATE_LIMIT_RPM": "0"})
    async with gw.client() as client:
        document = (await client.get("/openapi.json")).json()
    ran, failures = await asyncio.to_thread(exercise, document, gw.url)
    expected = {f"{method.upper()} {path}" for path, item in document["paths"].items()
                for method in item}
    assert set(ran) == expected
    assert not failures, "\n\n".join(failures)
