"""Talking to BuildKit: connections, session, solving, progress. Knows nothing about PyTorch."""
