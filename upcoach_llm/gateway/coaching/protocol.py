"""The coaching chat request and reply: a chat completion plus the coaching context."""

from __future__ import annotations

from pydantic import ConfigDict, Field

from upcoach_llm.common.limits import MAX_NAME_CHARS
from upcoach_llm.gateway.chat.protocol import ChatCompletionRequest, ChatCompletionResponse
from upcoach_llm.gateway.http.text import text

ContextName = text(MAX_NAME_CHARS, min_length=1)


class CoachingChatRequest(ChatCompletionRequest):
    """Messages plus ``context_type``; the router adds that context's system prompt and picks
    the model from the feature the context implies, unless ``model`` is given."""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"context_type": "habits", "stream": True,
         "messages": [{"role": "user", "content": "Help me build a morning routine"}]}]})

    context_type: ContextName = Field(
        description="Coaching context from config/coaching.yaml: general, habits, goals, "
                    "motivation, wellness, mood, affirmations, reminders, recommendations, "
                    "voice. An unknown one is a 400 listing the valid ones.")


class CoachingChatResponse(ChatCompletionResponse):
    """The whole reply, naming the coaching context it was given (streamed chunks do not)."""

    context_type: str
