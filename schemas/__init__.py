"""Pydantic models of every wire format: one module per API family's document."""
