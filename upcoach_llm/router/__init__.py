"""The router service: picks model and backend for a chat and streams the reply from generation."""
