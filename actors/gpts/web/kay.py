"""Kay.ai's company data (POST {base_url}/retrieve, API-Key header), as OpenGPTs' KayAiRetriever
asks it through the kay client: dataset "company", SEC filings (10-K, 10-Q; 3 contexts) or press
releases (6); each context a Document whose text is its chunk_embed_text."""

from __future__ import annotations

from actors.gpts.settings import ToolConfig
from actors.gpts.web import Found, ToolResult, ToolFailure, documents
from actors.gpts.web.http import base, request

BASE_URL = "https://api.kay.ai"
DATASETS = {"sec_filings_kai_ai": (["10-K", "10-Q"], 3),
            "press_releases_kai_ai": (["PressRelease"], 6)}


async def run(tool_type: str, query: str, config: ToolConfig, key: str) -> ToolResult:
    data_types, contexts = DATASETS[tool_type]
    response = await request("POST", base(config, BASE_URL) + "/retrieve", config,
                             headers={"API-Key": key}, json={
                                 "query": query[:400],
                                 "dataset_config": {"dataset_id": "company",
                                                    "data_types": data_types},
                                 "retrieval_config": {"num_context": contexts}})
    body = response.json()
    if body.get("success") not in (True, "true"):  # the kay client's own test
        raise ToolFailure(f"Kay.ai refused the query: {body.get('error') or body}")
    found = []
    for context in body.get("contexts") or []:
        meta = {k: v for k, v in context.items() if k != "chunk_embed_text"}
        title = meta.get("title") or meta.get("company_name") or ""
        found.append(Found(str(title), str(meta.get("data_source_link") or
                                           meta.get("url") or ""),
                           str(context.get("chunk_embed_text") or ""), meta))
    return documents(found)
