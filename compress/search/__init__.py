"""Target-aware search: build candidate students (depth x prune ratio x precision), measure them on the
target, keep the Pareto front and pick the fastest that meets the floor (see docs/search.md)."""
