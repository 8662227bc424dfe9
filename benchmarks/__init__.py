"""Measuring models: quality metrics, latency, memory, size; local and remote runners; reports."""
