"""The OpenGPTs API family (../shared/specs/opengpts.md), both eras, on one server."""

from fastapi import APIRouter

from api.edge import EdgeRoute, detail_responses
from api.family import Family
from api.opengpts.settings import OpenGptsSettings
from api.opengpts import assistants, runs, threads
from actors.gpts.settings import ToolSettings
from llm.service import MODEL_PORT

router = APIRouter(route_class=EdgeRoute, responses=detail_responses())
router.include_router(assistants.router)
router.include_router(threads.router)
router.include_router(runs.router)
router.include_router(runs.ingest_router)


@router.get("/ok", tags=["opengpts"])
async def ok() -> dict[str, bool]:
    return {"ok": True}


FAMILY = Family("opengpts", (router,), title="OpenGPTs",
                summary="assistants, threads and runs streamed as server-sent events",
                doc_tag="opengpts: assistants",
                kind_modules=("actors.assistant", "actors.documents", "actors.thread"),
                services=(MODEL_PORT, "actors.gpts.tools:gpts_tools"),
                settings=(OpenGptsSettings, ToolSettings))
