"""config/semantic_cache.yaml, typed and checked: which features the semantic cache serves, and
when a request is impersonal enough for it.

A request's feature is its ``feature`` field, else the feature its coaching context implies
(config/coaching.yaml). A feature named here must exist in config/features.yaml, so a typo stops
the gateway's start-up with the file and key named.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field

from upcoach_llm.api import common_pb2
from upcoach_llm.common.config import config_dir, load_config_file
from upcoach_llm.common.errors import ConfigError
from upcoach_llm.common.features import CoachingFile, FeaturesFile
from upcoach_llm.gateway.store.cache import single_turn

FILE = "semantic_cache.yaml"
# An impersonal message's characters per word at most: words are counted at blanks, and one
# "word" of 200,000 characters would be stored and read back on every lookup of its bucket.
CHARS_PER_WORD = 20


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FeatureRule(_Strict):
    """How close a stored request must be for its reply to answer a new one."""

    threshold: float = Field(gt=0, le=1)


class SemanticCacheFile(_Strict):
    """config/semantic_cache.yaml."""

    embedding_model: str = Field(min_length=1)
    max_words: int = Field(gt=0)
    features: dict[str, FeatureRule]


@dataclass(frozen=True)
class SemanticPolicy:
    """The file plus the coaching contexts' features, to name a request's feature."""

    file: SemanticCacheFile
    context_features: dict[str, str]

    @property
    def embedding_model(self) -> str:
        return self.file.embedding_model

    def feature_of(self, feature: str, coaching_context: str) -> str:
        """The request's feature: its own, else its coaching context's ('' when neither)."""
        return feature or self.context_features.get(coaching_context, "")

    def threshold(self, feature: str) -> float | None:
        """The feature's similarity threshold; None when the feature is not cacheable."""
        rule = self.file.features.get(feature)
        return rule.threshold if rule else None

    def impersonal_text(self, messages: list[common_pb2.ChatMessage]) -> str | None:
        """The one user message of an impersonal request, else None.

        Impersonal: system messages (part of the entry's scope, not of its meaning) then exactly
        one user message of at most ``max_words`` words and ``max_words`` x CHARS_PER_WORD
        characters. Earlier turns, assistant or tool messages, or a long message carry the
        user's own story, and their reply is theirs.
        """
        if not single_turn(messages):
            return None
        text = messages[-1].content.strip()
        if (not text or len(text) > self.file.max_words * CHARS_PER_WORD
                or len(text.split()) > self.file.max_words):
            return None
        return text


def load_semantic_policy() -> SemanticPolicy:
    """Loads semantic_cache.yaml and checks its features against features.yaml."""
    loaded = load_config_file(SemanticCacheFile, FILE)
    features = load_config_file(FeaturesFile, "features.yaml")
    coaching = load_config_file(CoachingFile, "coaching.yaml")
    for name in loaded.features:
        if name not in features.features:
            raise ConfigError(f"{config_dir() / FILE}: features.{name}: "
                              f"{name!r} is not in features.yaml")
    return SemanticPolicy(loaded, {name: context.feature
                                   for name, context in coaching.contexts.items()})
