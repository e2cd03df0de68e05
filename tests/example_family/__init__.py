"""The notes family: PUT and GET /notes/{id} (README, "Adding an API family")."""

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException
from pydantic import BaseModel, Field

from api.edge import EdgeRoute
from api.family import Family
from api.kit import Refusals, send
from api.runtime import Runtime, get_runtime

REFUSALS = Refusals({"invalid": 422})  # the kind's codes as this document's statuses
Rt = Annotated[Runtime, Depends(get_runtime)]
router = APIRouter(prefix="/notes", route_class=EdgeRoute, tags=["notes"])


class NoteIn(BaseModel):
    text: str = Field(max_length=10_000)


class Note(BaseModel):
    note_id: str
    text: str | None
    edits: int


@router.put("/{note_id}", response_model=Note)
async def put_note(note_id: str, body: NoteIn, rt: Rt) -> Note:
    ref = rt.client.ref("note", note_id)
    outcome = await send(ref, {"type": "write", "text": body.text}, REFUSALS, with_state=True)
    return Note(note_id=note_id, **outcome.state)


@router.get("/{note_id}", response_model=Note)
async def get_note(note_id: str, rt: Rt) -> Note:
    version, state = await rt.client.ref("note", note_id).astate()
    if version == 0:
        raise HTTPException(404, "Note not found")
    return Note(note_id=note_id, **state)


FAMILY = Family("notes", (router,), kind_modules=("tests.example_family.note",))
