"""The entity kinds, one module each. Importing this package registers them all."""

from actors import counter  # noqa: F401
