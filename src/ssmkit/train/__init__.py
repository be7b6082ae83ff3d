"""The experiment runner."""
