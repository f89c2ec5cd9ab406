"""Who may call the gateway, and how often: API keys and the shared rate limit."""
