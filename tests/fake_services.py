"""Stand-ins for the OpenGPTs web tools' services, on loopback, each speaking its service's
real wire format: the MediaWiki Action API's JSON (formatversion 2), arXiv's Atom feed, NCBI
E-utilities (esearch JSON, efetch XML), Tavily's JSON, DuckDuckGo's HTML results page,
You.com's and Kay.ai's JSON, OpenAI's image and embeddings responses, a Connery runner
(/v1/actions) and a Sema4.ai Action Server (its /openapi.json and /api/actions/...).

Scripted by the query: one that says "slow" is answered after ``slow`` seconds, "broken" gets
HTTP 503, "nothing" finds nothing, "huge" gets a 5 MB answer. Embeddings are a bag of words
hashed into 64 dimensions, with "automobile" and "car" counted as one word (what a real model
learns; BM25 does not).
Every request is kept in ``requests`` as (path, query or form or JSON).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import re
import threading
from typing import Any
from urllib.parse import quote

from aiohttp import web

from tests.loopback import LoopbackServer

TOPICS = [
    ("Alan Turing", "Alan Mathison Turing was an English mathematician, computer scientist, "
     "logician, cryptanalyst, philosopher and theoretical biologist. He was highly "
     "influential in the development of theoretical computer science, providing a "
     "formalisation of the concepts of algorithm and computation with the Turing machine."),
    ("Turing test", "The Turing test, originally called the imitation game by Alan Turing in "
     "1950, is a test of a machine's ability to exhibit intelligent behaviour."),
    ("Turing machine", "A Turing machine is a mathematical model of computation describing an "
     "abstract machine that manipulates symbols on a strip of tape."),
]


class FakeServices(LoopbackServer):
    name = "fake-services"

    def __init__(self, slow: float = 3.0) -> None:
        super().__init__()
        self.slow = slow
        self.requests: list[tuple[str, Any]] = []

    async def _script(self, text: str) -> web.Response | None:
        if "slow" in text:
            await asyncio.sleep(self.slow)
        if "broken" in text:
            return web.Response(status=503, text="Service Unavailable")
        if "huge" in text:
            return web.json_response({"padding": "x" * 5_000_000})
        return None

    def _hits(self, text: str) -> list[tuple[str, str]]:
        return [] if "nothing" in text else TOPICS

    # ------------------------------------------------------------------ MediaWiki
    async def _mediawiki(self, request: web.Request) -> web.Response:
        q = dict(request.query)
        self.requests.append(("/w/api.php", q))
        failed = await self._script(q.get("gsrsearch", ""))
        if failed:
            return failed
        if q.get("action") != "query" or q.get("generator") != "search":
            return web.json_response({"error": {"code": "badvalue", "info": "unexpected"}})
        pages = [{"pageid": 1000 + i, "ns": 0, "title": title, "index": i + 1,
                  "contentmodel": "wikitext", "pagelanguage": "en",
                  "fullurl": f"https://en.wikipedia.org/wiki/{quote(title.replace(' ', '_'))}",
                  "canonicalurl": f"https://en.wikipedia.org/wiki/{title.replace(' ', '_')}",
                  "extract": text}
                 for i, (title, text) in enumerate(self._hits(q["gsrsearch"])
                                                   [:int(q.get("gsrlimit", 10))])]
        body: dict[str, Any] = {"batchcomplete": True}
        if pages:
            body["query"] = {"pages": list(reversed(pages))}  # the API's order is not rank
        return web.json_response(body)

    # ------------------------------------------------------------------ arXiv
    async def _arxiv(self, request: web.Request) -> web.Response:
        q = dict(request.query)
        self.requests.append(("/api/query", q))
        failed = await self._script(q.get("search_query", ""))
        if failed:
            return failed
        hits = self._hits(q.get("search_query", ""))[:int(q.get("max_results", 10))]
        entries = "".join(f"""
  <entry>
    <id>http://arxiv.org/abs/2401.0000{i}v1</id>
    <updated>2024-01-0{i + 1}T10:00:00Z</updated>
    <published>2024-01-0{i + 1}T10:00:00Z</published>
    <title>{title}</title>
    <summary>  {text}
    </summary>
    <author><name>Ada Lovelace</name></author>
    <author><name>Charles Babbage</name></author>
    <link href="http://arxiv.org/abs/2401.0000{i}v1" rel="alternate" type="text/html"/>
    <link title="pdf" href="http://arxiv.org/pdf/2401.0000{i}v1" rel="related"
          type="application/pdf"/>
    <arxiv:primary_category xmlns:arxiv="http://arxiv.org/schemas/atom" term="cs.LO"
          scheme="http://arxiv.org/schemas/atom"/>
    <category term="cs.LO" scheme="http://arxiv.org/schemas/atom"/>
  </entry>""" for i, (title, text) in enumerate(hits))
        feed = f"""<?xml version="1.0" encoding="UTF-8"?>
<feed xmlns="http://www.w3.org/2005/Atom">
  <link href="http://arxiv.org/api/query" rel="self" type="application/atom+xml"/>
  <title type="html">ArXiv Query: {q.get('search_query', '')}</title>
  <id>http://arxiv.org/api/standin</id>
  <updated>2024-01-05T00:00:00-05:00</updated>
  <opensearch:totalResults xmlns:opensearch="http://a9.com/-/spec/opensearch/1.1/">{len(hits)}</opensearch:totalResults>
  <opensearch:startIndex xmlns:opensearch="http://a9.com/-/spec/opensearch/1.1/">0</opensearch:startIndex>
  <opensearch:itemsPerPage xmlns:opensearch="http://a9.com/-/spec/opensearch/1.1/">{len(hits)}</opensearch:itemsPerPage>{entries}
</feed>"""
        return web.Response(text=feed, content_type="application/atom+xml")

    # ------------------------------------------------------------------ E-utilities
    async def _esearch(self, request: web.Request) -> web.Response:
        q = dict(request.query)
        self.requests.append(("esearch", q))
        failed = await self._script(q.get("term", ""))
        if failed:
            return failed
        ids = [str(31000000 + i) for i, _ in enumerate(self._hits(q.get("term", "")))]
        ids = ids[:int(q.get("retmax", 20))]
        return web.json_response({"header": {"type": "esearch", "version": "0.3"},
                                  "esearchresult": {"count": str(len(ids)),
                                                    "retmax": str(len(ids)), "retstart": "0",
                                                    "idlist": ids, "translationset": [],
                                                    "querytranslation": q.get("term")}})

    async def _efetch(self, request: web.Request) -> web.Response:
        q = dict(request.query)
        self.requests.append(("efetch", q))
        articles = []
        for uid in q.get("id", "").split(","):
            title, text = TOPICS[int(uid) - 31000000]
            articles.append(f"""<PubmedArticle><MedlineCitation Status="MEDLINE" Owner="NLM">
<PMID Version="1">{uid}</PMID><Article PubModel="Print"><Journal><JournalIssue
CitedMedium="Internet"><Volume>12</Volume><PubDate><Year>2021</Year><Month>Mar</Month>
</PubDate></JournalIssue><Title>Journal of Computing</Title></Journal>
<ArticleTitle>{title}: a <i>review</i>.</ArticleTitle><Abstract>
<AbstractText Label="BACKGROUND" NlmCategory="BACKGROUND">{text}</AbstractText>
<AbstractText Label="CONCLUSIONS" NlmCategory="CONCLUSIONS">Further study is needed.
</AbstractText></Abstract></Article></MedlineCitation></PubmedArticle>""")
        xml = ('<?xml version="1.0" ?>\n<!DOCTYPE PubmedArticleSet PUBLIC "-//NLM//DTD '
               'PubMedArticle, 1st January 2024//EN" "https://dtd.nlm.nih.gov/ncbi/pubmed/out/'
               'pubmed_240101.dtd">\n<PubmedArticleSet>' + "".join(articles)
               + "</PubmedArticleSet>")
        return web.Response(text=xml, content_type="text/xml")

    # ------------------------------------------------------------------ Tavily
    async def _tavily(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.requests.append(("/search", {**body, "authorization":
                                          request.headers.get("Authorization")}))
        if request.headers.get("Authorization") != "Bearer tvly-test":
            return web.json_response({"detail": {"error": "Unauthorized: missing or invalid "
                                                          "API key."}}, status=401)
        failed = await self._script(body.get("query", ""))
        if failed:
            return failed
        hits = self._hits(body["query"])[:body.get("max_results", 5)]
        return web.json_response({
            "query": body["query"], "follow_up_questions": None,
            "answer": "Alan Turing was an English mathematician." if body.get("include_answer")
            else None, "images": [],
            "results": [{"title": t, "url": f"https://example.org/{i}", "content": text,
                         "score": 0.9 - i / 10, "raw_content": None}
                        for i, (t, text) in enumerate(hits)],
            "response_time": 0.42})

    # ------------------------------------------------------------------ DuckDuckGo
    async def _ddg(self, request: web.Request) -> web.Response:
        form = dict(await request.post())
        self.requests.append(("/html/", form))
        failed = await self._script(form.get("q", ""))
        if failed:
            return failed
        ad = ('<div class="result results_links results_links_deep result--ad">'
              '<h2 class="result__title"><a class="result__a" href="https://ads.example/">'
              'An ad</a></h2><a class="result__snippet">Buy now</a></div>')
        results = "".join(
            f'<div class="result results_links results_links_deep web-result ">'
            f'<div class="links_main links_deep result__body"><h2 class="result__title">'
            f'<a rel="nofollow" class="result__a" href="//duckduckgo.com/l/?uddg='
            f'{quote("https://example.org/" + t.replace(" ", "_"), safe="")}&amp;rut=x">'
            f'{t}</a></h2><a class="result__snippet" href="#">{text[:120]} <b>more</b></a>'
            f'</div></div>' for t, text in self._hits(form.get("q", "")))
        page = (f"<!DOCTYPE html><html><head><title>{form.get('q')} at DuckDuckGo</title>"
                f"</head><body><div id='links' class='results'>{ad}{results}</div></body></html>")
        return web.Response(text=page, content_type="text/html")

    # ------------------------------------------------------------------ You.com
    async def _you(self, request: web.Request) -> web.Response:
        q = dict(request.query)
        self.requests.append(("/search", {**q, "key": request.headers.get("X-API-Key")}))
        if request.headers.get("X-API-Key") != "ydc-test":
            return web.json_response({"message": "Forbidden"}, status=403)
        failed = await self._script(q.get("query", ""))
        if failed:
            return failed
        return web.json_response({"hits": [
            {"url": f"https://example.org/you/{i}", "title": t, "description": text[:60],
             "snippets": [text, f"{t} in one more sentence."]}
            for i, (t, text) in enumerate(self._hits(q.get("query", "")))], "latency": 0.3})

    # ------------------------------------------------------------------ Kay.ai
    async def _kay(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.requests.append(("/retrieve", {**body, "key": request.headers.get("API-Key")}))
        failed = await self._script(body.get("query", ""))
        if failed:
            return failed
        kinds = body["dataset_config"]["data_types"]
        return web.json_response({"success": True, "contexts": [
            {"chunk_embed_text": f"{t}: {text}", "company_name": "Turing Inc",
             "title": f"Turing Inc {kinds[0]}", "data_source": kinds[0],
             "data_source_link": f"https://www.sec.gov/standin/{i}",
             "data_source_publish_date": "2023-11-03"}
            for i, (t, text) in enumerate(self._hits(body["query"]))][
                :body["retrieval_config"]["num_context"]]})

    # ------------------------------------------------------------------ OpenAI
    async def _images(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.requests.append(("/v1/images/generations", body))
        failed = await self._script(body.get("prompt", ""))
        if failed:
            return web.json_response({"error": {"message": "The server is overloaded.",
                                                "type": "server_error", "param": None,
                                                "code": None}}, status=503)
        return web.json_response({"created": 1700000000, "data": [
            {"url": "https://images.example/standin.png",
             "revised_prompt": body["prompt"]}]})

    async def _embeddings(self, request: web.Request) -> web.Response:
        body = await request.json()
        texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
        self.requests.append(("/v1/embeddings", body))
        if any("broken" in t for t in texts):
            return web.json_response({"error": {"message": "down"}}, status=503)
        return web.json_response({
            "object": "list", "model": body["model"],
            "data": [{"object": "embedding", "index": i, "embedding": embed(t)}
                     for i, t in enumerate(texts)],
            "usage": {"prompt_tokens": 1, "total_tokens": 1}})

    # ------------------------------------------------------------------ Connery runner
    async def _connery_list(self, request: web.Request) -> web.Response:
        self.requests.append(("/v1/actions", {"key": request.headers.get("x-api-key")}))
        if request.headers.get("x-api-key") != "connery-test":
            return web.json_response({"status": "error", "error": {"message": "Unauthorized"}},
                                     status=401)
        return web.json_response({"status": "success", "data": [
            {"id": "CAF979E6D2FF4C8B946EEBAFCB3BA475", "key": "sendEmail",
             "title": "Send email", "description": "Send an email to the recipient.",
             "type": "create", "pluginId": "connery-io/gmail",
             "inputParameters": [
                 {"key": "recipient", "title": "Email address", "description": "Recipient",
                  "type": "string", "validation": {"required": True}},
                 {"key": "subject", "title": "Subject", "description": "Subject",
                  "type": "string", "validation": {"required": True}},
                 {"key": "body", "title": "Body", "description": "Body", "type": "string"}],
             "outputParameters": [{"key": "messageId", "title": "Message ID",
                                   "type": "string"}]}]})

    async def _connery_run(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.requests.append((request.path, body))
        failed = await self._script(json.dumps(body))
        if failed:
            return failed
        if not body.get("input", {}).get("recipient"):
            return web.json_response({"status": "error", "error": {
                "message": "Input parameter 'recipient' is required."}}, status=400)
        return web.json_response({"status": "success", "data": {"output": {
            "messageId": "msg-1"}}})

    # ------------------------------------------------------------------ Action Server
    async def _openapi(self, request: web.Request) -> web.Response:
        return web.json_response({
            "openapi": "3.1.0", "info": {"title": "Sema4.ai Action Server", "version": "1"},
            "paths": {
                "/api/actions/weather/get-forecast/run": {"post": {
                    "summary": "Get forecast", "operationId": "get_forecast",
                    "description": "Gets the weather forecast for a city.",
                    "requestBody": {"required": True, "content": {"application/json": {
                        "schema": {"$ref": "#/components/schemas/GetForecastInput"}}}},
                    "responses": {"200": {"description": "ok"}}}},
                "/openapi.json": {"get": {"summary": "the document"}}},
            "components": {"schemas": {"GetForecastInput": {
                "type": "object", "properties": {"city": {"type": "string",
                                                          "title": "City"}},
                "required": ["city"]}}}})

    async def _forecast(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.requests.append((request.path, {**body, "authorization":
                                             request.headers.get("Authorization")}))
        if request.headers.get("Authorization") != "Bearer as-test":
            return web.json_response({"detail": "Unauthorized"}, status=401)
        return web.json_response(f"Sunny in {body.get('city')}, 21 degrees.")

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/w/api.php", self._mediawiki)
        app.router.add_get("/api/query", self._arxiv)
        app.router.add_get("/entrez/eutils/esearch.fcgi", self._esearch)
        app.router.add_get("/entrez/eutils/efetch.fcgi", self._efetch)
        app.router.add_post("/search", self._tavily)
        app.router.add_get("/search", self._you)
        app.router.add_post("/html/", self._ddg)
        app.router.add_post("/retrieve", self._kay)
        app.router.add_post("/v1/images/generations", self._images)
        app.router.add_post("/v1/embeddings", self._embeddings)
        app.router.add_get("/v1/actions", self._connery_list)
        app.router.add_post("/v1/actions/{id}/run", self._connery_run)
        app.router.add_get("/openapi.json", self._openapi)
        app.router.add_post("/api/actions/weather/get-forecast/run", self._forecast)


def embed(text: str, dims: int = 64) -> list[float]:
    vector = [0.0] * dims
    for word in re.findall(r"\w+", text.lower()):
        word = "car" if word in ("automobile", "automobiles", "cars") else word
        vector[int(hashlib.md5(word.encode()).hexdigest(), 16) % dims] += 1.0
    norm = math.sqrt(sum(v * v for v in vector)) or 1.0
    return [v / norm for v in vector]


if __name__ == "__main__":  # a stand-in to point a service at by hand
    s = FakeServices().start()
    print(json.dumps({"url": s.url}))
    threading.Event().wait()
