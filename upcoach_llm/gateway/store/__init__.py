"""Redis: the shared connection (with its down/up tracking) and the chat response cache."""
