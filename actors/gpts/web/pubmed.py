"""PubMed through NCBI's E-utilities, as OpenGPTs' PubMedRetriever reads them: esearch for the
ids (JSON), efetch for the articles (XML): title, abstract, publication date."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from actors.gpts.settings import ToolConfig
from actors.gpts.web import Found, ToolResult, documents
from actors.gpts.web.http import base, request

BASE_URL = "https://eutils.ncbi.nlm.nih.gov"


async def run(tool_type: str, query: str, config: ToolConfig, key: str) -> ToolResult:
    root = base(config, BASE_URL) + "/entrez/eutils"
    extra = {"api_key": key} if key else {}
    found = await request("GET", root + "/esearch.fcgi", config, params={
        "db": "pubmed", "term": query[:300], "retmode": "json",
        "retmax": str(config.max_results), "sort": "relevance", **extra})
    ids = found.json().get("esearchresult", {}).get("idlist") or []
    if not ids:
        return documents([])
    fetched = await request("GET", root + "/efetch.fcgi", config, params={
        "db": "pubmed", "retmode": "xml", "id": ",".join(ids), **extra})
    articles = ET.fromstring(fetched.content).iter("PubmedArticle")
    return documents([_article(a) for a in articles])


def _article(article: ET.Element) -> Found:
    uid = article.findtext(".//PMID") or ""
    title = "".join(article.find(".//ArticleTitle").itertext()).strip() \
        if article.find(".//ArticleTitle") is not None else ""
    parts = []
    for text in article.iter("AbstractText"):
        label, body = text.get("Label"), "".join(text.itertext()).strip()
        parts.append(f"{label}: {body}" if label else body)
    date = article.find(".//PubDate")
    published = "-".join(x for x in (date.findtext("Year"), date.findtext("Month"),
                                      date.findtext("Day")) if x) if date is not None else ""
    return Found(title, f"https://pubmed.ncbi.nlm.nih.gov/{uid}/",
                 "\n".join(parts) or "No abstract available",
                 {"uid": uid, "Published": published})
