"""The committed .env.example and README table are what the registry generates."""

from __future__ import annotations

import re

from upcoach_llm.common.variables import VARIABLES
from upcoach_llm.dev.variable_docs import (
    ENV_EXAMPLE,
    README,
    generated_env_example,
    generated_readme,
    required_variables,
)

FIX = "run: python -m upcoach_llm.dev.variable_docs --env-example --markdown"


def test_env_example_is_generated_from_the_registry() -> None:
    assert ENV_EXAMPLE.read_text() == generated_env_example(), FIX


def test_readme_table_is_generated_from_the_registry() -> None:
    assert README.read_text() == generated_readme(), FIX


def test_env_example_lists_every_variable_once() -> None:
    text = ENV_EXAMPLE.read_text()
    required = required_variables(text)
    optional = re.findall(r"^# ([A-Z][A-Z0-9_]*)=", text, re.MULTILINE)
    listed = [*required, *(n for n in optional if n in VARIABLES.variables)]
    assert sorted(listed) == sorted(VARIABLES.variables)
