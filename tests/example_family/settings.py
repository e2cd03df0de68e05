"""The notes family's settings: read from the environment (or the options the driver's
settings carry to every process), checked when the service starts."""

from typing import ClassVar

from pydantic import Field

from runtime.settings import Section


class NotesSettings(Section):
    title: ClassVar[str] = "Notes"
    seconds_per_word: float = Field(0.05, ge=0, validation_alias="NOTES_SECONDS_PER_WORD",
                                    description="how long proofreading one word takes")
    sweep_seconds: float = Field(5.0, ge=0, validation_alias="NOTES_SWEEP_SECONDS",
                                 description="how often cut proofreadings are carried on")
