"""The notes family's operations, with no HTTP in them: what its routes, a Python program or
a command line call. Refusals are api/commands.py's Refused, with the kind's codes."""

from typing import Any

from api.commands import Refused, ask, launch
from api.runtime import Runtime
from runtime.events import Event, split_stream_id
from runtime.projection import Projection, ProjectionRunner, one_per_store
from tests.example_family.note import NOTE, should_resume
from tests.example_family.settings import NotesSettings


async def write(rt: Runtime, note_id: str, text: str) -> dict[str, Any]:
    outcome = await ask(rt.client.ref(NOTE, note_id), {"type": "write", "text": text},
                        with_state=True)
    return outcome.state


async def read(rt: Runtime, note_id: str) -> dict[str, Any]:
    version, state = await rt.client.ref(NOTE, note_id).astate()
    if version == 0:
        raise Refused("not_found", "Note not found")
    return state


async def proofread(rt: Runtime, note_id: str) -> None:
    """Start the proofreading; returns once it is under way (it runs on in its host)."""
    seconds = NotesSettings.load(rt.settings.options).seconds_per_word
    await launch(rt.client.ref(NOTE, note_id), {"type": "proofread",
                                                 "seconds_per_word": seconds})


async def stop(rt: Runtime, note_id: str) -> None:
    await rt.client.ref(NOTE, note_id).acancel("stopped by a client")


class UnderWay(Projection):
    """The notes whose proofreading the log says is running or cut."""

    name, kinds, version = "notes-under-way", (NOTE,), 1
    types = ("proofread_started", "proofread_resumed", "proofread_cut", "proofread_done",
             "proofread_stopped", "written")

    def __init__(self) -> None:
        self.notes: set[str] = set()

    def apply(self, event: Event) -> None:
        _, note_id = split_stream_id(event.stream)
        if event.type in ("proofread_started", "proofread_resumed", "proofread_cut"):
            self.notes.add(note_id)
        else:
            self.notes.discard(note_id)

    def dump(self) -> Any:
        return sorted(self.notes)

    def load(self, data: Any) -> None:
        self.notes = set(data)


async def resume_cut(rt: Runtime) -> int:
    """The family's periodic work: every proofreading a crash cut (or whose host died) goes on
    from its last committed word, by the kind's one rule."""
    runner = one_per_store(UnderWay.name, rt.store,
                           lambda store: ProjectionRunner(store, UnderWay()))
    await runner.catch_up()
    resumed = 0
    for note_id in sorted(runner.projection.notes):
        ref = rt.client.ref(NOTE, note_id)
        _, state = await ref.astate()  # an activation: a cut run is closed as cut here
        if should_resume(state, await ref.arunning()):
            await proofread(rt, note_id)
            resumed += 1
    return resumed
