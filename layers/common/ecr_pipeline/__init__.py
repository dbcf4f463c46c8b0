"""ecr-pipeline: the shared core of the pipeline's functions (config, events, decisions, adapters)."""
