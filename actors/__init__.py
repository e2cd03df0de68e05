"""The entity kinds, one module each. Importing this package registers them all."""

from actors import assistant, counter, thread  # noqa: F401
