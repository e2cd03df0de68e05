"""The notes family (README, "Adding an API family"): its edge, PUT and GET /notes/{id},
POST /notes/{id}/proofread and /stop, over its service, and its declaration."""

from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from api.background import Work
from api.edge import EdgeRoute
from api.family import Family
from api.kit import Refusals
from api.runtime import Runtime, get_runtime
from tests.example_family import service
from tests.example_family.settings import NotesSettings

#: the service's refusal codes as this document's statuses, in FastAPI's {"detail"} shape
REFUSALS = Refusals({"invalid": 422, "not_found": 404})
Rt = Annotated[Runtime, Depends(get_runtime)]
router = APIRouter(prefix="/notes", route_class=EdgeRoute.refusing(REFUSALS), tags=["notes"])


class NoteIn(BaseModel):
    text: str = Field(max_length=10_000)


class Proofread(BaseModel):
    status: str
    checked: int
    flagged: list[str]


class Note(BaseModel):
    note_id: str
    text: str | None
    edits: int
    proofread: Proofread | None = None


@router.put("/{note_id}", response_model=Note)
async def put_note(note_id: str, body: NoteIn, rt: Rt) -> Note:
    return Note(note_id=note_id, **await service.write(rt, note_id, body.text))


@router.get("/{note_id}", response_model=Note)
async def get_note(note_id: str, rt: Rt) -> Note:
    return Note(note_id=note_id, **await service.read(rt, note_id))


@router.post("/{note_id}/proofread", status_code=202, response_model=None)
async def proofread(note_id: str, rt: Rt) -> None:
    await service.proofread(rt, note_id)


@router.post("/{note_id}/stop", status_code=202, response_model=None)
async def stop(note_id: str, rt: Rt) -> None:
    await service.stop(rt, note_id)


FAMILY = Family(
    "notes", (router,), kind_modules=("tests.example_family.note",), settings=NotesSettings,
    background=(Work("notes: carrying cut proofreadings on", service.resume_cut,
                     every=lambda rt: NotesSettings.load(rt.settings.options).sweep_seconds),))
