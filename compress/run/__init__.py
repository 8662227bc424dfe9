"""The orchestrator: the stage contract and registry, the pipeline, stage.json, environment facts, checkpoints."""
