"""The model port: one interface to language models for every API family (see port.py)."""
