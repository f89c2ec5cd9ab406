"""The generation service: runs chat models on their backends' engines and streams the tokens."""
