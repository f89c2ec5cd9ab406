"""POST /api/coaching/chat: a chat in one of the coaching contexts (habits, goals, mood, ...)."""
