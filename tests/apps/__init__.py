"""Small ASGI apps and helpers for the CLI, lifespan and shutdown tests."""
