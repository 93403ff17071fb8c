"""Engines run a step by its kind: the in-memory engine (`Step.run`) and the bounded local engine.

The bounded engine streams `map` steps batch by batch, hash-partitions `keyed` steps into buckets
spilled to the store's tmp dir, and refuses a `global` step whose input cannot fit the memory limit
before it starts. Outputs are written as Parquet parts whose boundaries depend only on the rows, so
both engines give versions with the same content hash.
"""
