"""config/features.yaml (the guide's feature-to-model table) and config/coaching.yaml (coaching
contexts and their prompts), typed: the router routes with them, the gateway's semantic cache
reads which feature a request is for. Cross-checks against the catalogs: router/policy.py.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from upcoach_llm.common.errors import InvalidArgument


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Feature(_Strict):
    """A row of the guide's feature-to-model table."""

    server_model: str
    edge_model: str | None = None
    notes: str = ""


class FeaturesFile(_Strict):
    """config/features.yaml."""

    features: dict[str, Feature]

    def row(self, name: str) -> Feature:
        """The feature's row; InvalidArgument naming ``feature`` when there is none."""
        row = self.features.get(name)
        if row is None:
            raise InvalidArgument(f"{name!r} is not one of {', '.join(self.features)}",
                                  field="feature")
        return row


class CoachingContext(_Strict):
    """A coaching context: the feature it implies and its part of the system prompt."""

    feature: str
    prompt: str = Field(min_length=1)


class CoachingFile(_Strict):
    """config/coaching.yaml."""

    default_context: str
    base_prompt: str = Field(min_length=1)
    contexts: dict[str, CoachingContext]

    def system_prompt(self, context: str) -> str:
        return f"{self.base_prompt} {self.contexts[context].prompt}"
