"""Curation capabilities: plain functions over Polars frames (no store, no CLI)."""
