"""Structural pruning (attention heads, FFN neurons, layers) with torch-pruning."""
