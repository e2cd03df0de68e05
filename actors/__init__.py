"""The entity kinds, one module each. Importing this package registers them all."""

from actors import assistant, chat, counter, documents, thread  # noqa: F401
