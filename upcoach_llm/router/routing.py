"""Which model a chat asks for: explicit model, coaching context, feature, route patterns, default.

Pure functions over the policy; the backend pool then decides which model of the fallback chain
is actually served.
"""

from __future__ import annotations

from dataclasses import dataclass

from upcoach_llm.common.chat import Message
from upcoach_llm.common.errors import InvalidArgument, NotFound
from upcoach_llm.router.policy import RouterPolicy


@dataclass(frozen=True)
class ModelChoice:
    """The model the rules picked, and the rule that picked it."""

    model: str
    reason: str


def choose_model(policy: RouterPolicy, *, model: str, feature: str, coaching_context: str,
                 messages: list[Message]) -> ModelChoice:
    """Applies the rules in order; raises NotFound/InvalidArgument naming the bad field (a
    coaching context is checked even where a model or a feature decides)."""
    catalog = policy.catalog
    feature, source = feature_of(policy, feature, coaching_context)
    if model:
        entry = catalog.get(model)
        if entry is None:
            known = ", ".join(m.name for m in catalog.models if m.kind == "chat")
            raise NotFound(f"{model!r} is not in the catalog (chat models: {known})",
                           field="model")
        if entry.kind != "chat":
            raise InvalidArgument(
                f"{model} is an embedding model; use the embeddings API for it", field="model")
        return ModelChoice(model, "requested")
    if feature:
        row = policy.features.row(feature)
        entry = catalog.get(row.server_model)
        if entry is None or entry.kind != "chat":
            raise InvalidArgument(f"{feature} is served by the embedding model "
                                  f"{row.server_model}; use the content search API for it",
                                  field="feature")
        return ModelChoice(row.server_model, f"{source}feature {feature}")
    text = last_user_text(messages)
    for rule in catalog.routing.routes:
        entry = catalog.get(rule.model)
        if entry is not None and entry.kind == "chat" and rule.regex.search(text):
            return ModelChoice(rule.model, f"pattern {rule.pattern!r}")
    return ModelChoice(catalog.routing.default_model, "default_model")


def feature_of(policy: RouterPolicy, feature: str, coaching_context: str) -> tuple[str, str]:
    """The feature that decides: the one named, else the one the coaching context implies (a
    context is checked either way), with how it was chosen for a reason text ("" or
    "coaching context mood → ")."""
    implied = coaching_feature(policy, coaching_context) if coaching_context else ""
    if feature or not implied:
        return feature, ""
    return implied, f"coaching context {coaching_context} → "


def coaching_feature(policy: RouterPolicy, context: str) -> str:
    """The feature a coaching context implies; InvalidArgument lists the valid contexts."""
    entry = policy.coaching.contexts.get(context)
    if entry is None:
        raise InvalidArgument(f"{context!r} is not one of "
                              f"{', '.join(policy.coaching.contexts)}", field="coaching_context")
    return entry.feature


def with_coaching_prompt(policy: RouterPolicy, context: str,
                         messages: list[Message]) -> list[Message]:
    """Puts the context's system prompt first, merged with the caller's own system message."""
    prompt = policy.coaching.system_prompt(context)
    if messages and messages[0].role == "system":
        return [Message("system", f"{prompt}\n\n{messages[0].content}"), *messages[1:]]
    return [Message("system", prompt), *messages]


def last_user_text(messages: list[Message]) -> str:
    """The last user message's text, which the route patterns are matched against."""
    return next((m.content for m in reversed(messages) if m.role == "user"), "")
