"""Pipelines: YAML specs, the DAG runner, the version store and its catalog, step types, sweeps."""
