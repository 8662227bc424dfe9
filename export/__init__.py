"""Turning a PyTorch model into files runtimes load, each checked against PyTorch."""
