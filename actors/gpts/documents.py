"""Documents for retrieval: files parsed to text, chunked, and searched with BM25.

Parsing and chunking run where the upload arrives (the ingest route); the chunks then travel
in an ``ingest`` command and are stored as a documents_ingested event, so an index is always a
fold of the log. BM25 (rank_bm25) needs no model and no network; OpenGPTs' own chunking
(1,000 characters, 200 overlapping) is kept so answers cite similar passages.
"""

from __future__ import annotations

import functools
import io
import mimetypes
import re
import uuid
from typing import Any

from rank_bm25 import BM25Okapi

from runtime.entity import Rejected
from runtime.events import NewEvent

__all__ = ["UnsupportedFile", "chunk", "ingest_event", "parse", "search", "to_documents"]

CHUNK_SIZE = 1000
CHUNK_OVERLAP = 200
MAX_CHUNKS_PER_COMMAND = 5000

_TEXT_TYPES = {"text/plain", "text/markdown", "text/x-markdown", "text/csv", "application/json",
               "text/x-rst"}
_HTML_TYPES = {"text/html", "application/xhtml+xml"}


class UnsupportedFile(ValueError):
    """A file this server cannot read as text."""


def _kind_of(filename: str, content_type: str | None, data: bytes) -> str:
    if data[:5] == b"%PDF-":
        return "pdf"
    guessed = (mimetypes.guess_type(filename)[0] or "") if filename else ""
    for mime in (guessed, (content_type or "").split(";")[0].strip().lower()):
        if mime == "application/pdf":
            return "pdf"
        if mime in _HTML_TYPES:
            return "html"
        if mime in _TEXT_TYPES or mime.startswith("text/"):
            return "text"
    if filename.lower().endswith((".md", ".markdown", ".txt", ".rst", ".log")):
        return "text"
    head = data[:512].lstrip().lower()
    if head.startswith((b"<!doctype html", b"<html")):
        return "html"
    try:
        data[:4096].decode("utf-8")
        return "text"
    except UnicodeDecodeError:
        raise UnsupportedFile(
            f"{filename or 'the file'}: unsupported file type "
            f"({content_type or guessed or 'unknown'}); send text, markdown, HTML or PDF"
        ) from None


def parse(filename: str, content_type: str | None, data: bytes) -> str:
    kind = _kind_of(filename, content_type, data)
    if kind == "pdf":
        from pypdf import PdfReader
        from pypdf.errors import PdfReadError

        try:
            reader = PdfReader(io.BytesIO(data))
            return "\n\n".join((page.extract_text() or "") for page in reader.pages)
        except (PdfReadError, ValueError, KeyError) as exc:
            raise UnsupportedFile(f"{filename}: not a readable PDF ({exc})") from None
    text = data.decode("utf-8", errors="replace")
    if kind == "html":
        from bs4 import BeautifulSoup

        soup = BeautifulSoup(text, "html.parser")
        for tag in soup(["script", "style", "noscript"]):
            tag.decompose()
        return soup.get_text("\n", strip=True)
    return text


def chunk(text: str, size: int = CHUNK_SIZE, overlap: int = CHUNK_OVERLAP) -> list[str]:
    """Pieces of at most ``size`` characters, cut at a paragraph, line, sentence or word
    boundary where one lies in the second half, each starting ``overlap`` characters back."""
    text = text.strip()
    out: list[str] = []
    start = 0
    while start < len(text):
        end = min(len(text), start + size)
        if end < len(text):
            window = text[start:end]
            for sep in ("\n\n", "\n", ". ", " "):
                cut = window.rfind(sep)
                if cut > size // 2:
                    end = start + cut + len(sep)
                    break
        piece = text[start:end].strip()
        if piece:
            out.append(piece)
        if end >= len(text):
            break
        start = max(end - overlap, start + 1)
    return out


def ingest_event(cmd: dict[str, Any], namespace: str) -> NewEvent:
    source, chunks = cmd.get("source"), cmd.get("chunks")
    if not isinstance(source, str) or not isinstance(chunks, list) or not all(
            isinstance(c, str) for c in chunks):
        raise Rejected("ingest needs a source name and a list of text chunks", code="invalid")
    if len(chunks) > MAX_CHUNKS_PER_COMMAND:
        raise Rejected(f"at most {MAX_CHUNKS_PER_COMMAND} chunks per file", code="invalid")
    ids = cmd.get("ids") or [str(uuid.uuid4()) for _ in chunks]
    return NewEvent("documents_ingested", {"documents": [
        {"id": i, "source": source, "namespace": namespace, "text": c}
        for i, c in zip(ids, chunks)], "at": cmd.get("at")})


_WORDS = re.compile(r"\w+", re.UNICODE)


def _tokens(text: str) -> list[str]:
    return _WORDS.findall(text.lower())


@functools.lru_cache(maxsize=256)
def _index(corpus: tuple[str, ...]) -> BM25Okapi:
    return BM25Okapi([_tokens(t) or ["_"] for t in corpus])


def scores(documents: list[dict[str, Any]], query: str) -> list[float]:
    """Each chunk's BM25 score for ``query``."""
    if not documents:
        return []
    index = _index(tuple(d["text"] for d in documents))
    return list(index.get_scores(_tokens(query) or ["_"]))


def search(documents: list[dict[str, Any]], query: str, k: int = 4) -> list[dict[str, Any]]:
    """The ``k`` chunks that best match ``query`` (BM25), best first."""
    found = scores(documents, query)
    ranked = sorted(range(len(documents)), key=lambda i: (-found[i], i))
    return [documents[i] for i in ranked[:k]]


def to_documents(found: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """LangChain's Document dict, as OpenGPTs' retrieval tool messages carry them."""
    return [{"id": None, "metadata": {"source": d["source"], "namespace": d["namespace"]},
             "page_content": d["text"], "type": "Document"} for d in found]
