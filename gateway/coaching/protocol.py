"""The coaching chat request: a chat completion request plus the coaching context."""

from __future__ import annotations

from pydantic import Field

from gateway.chat.protocol import ChatCompletionRequest


class CoachingChatRequest(ChatCompletionRequest):
    """Messages plus ``context_type``; the router adds that context's system prompt and picks
    the model from the feature the context implies, unless ``model`` is given."""

    context_type: str = Field(
        min_length=1, max_length=64,
        description="Coaching context from config/coaching.yaml: general, habits, goals, "
                    "motivation, wellness, mood, affirmations, reminders, recommendations, "
                    "voice. An unknown one is a 400 listing the valid ones.")
