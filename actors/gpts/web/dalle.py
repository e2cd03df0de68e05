"""Dall-E through the openai SDK (images.generate), as OpenGPTs' DallEAPIWrapper asks it
(1024x1024, hd): the content is the image's address."""

from __future__ import annotations

from actors.gpts.settings import ToolConfig
from actors.gpts.web import ToolResult, ToolFailure
from actors.gpts.web.http import loop_client

BASE_URL = "https://api.openai.com/v1"


async def run(tool_type: str, query: str, config: ToolConfig, key: str) -> ToolResult:
    import openai

    client = loop_client(("openai", key, config.base_url, config.timeout),
                         lambda: openai.AsyncOpenAI(api_key=key,
                                                    base_url=config.base_url or BASE_URL,
                                                    timeout=config.timeout, max_retries=0))
    try:
        image = await client.images.generate(model=config.model or "dall-e-3",
                                             prompt=query[:4000], size="1024x1024",
                                             quality="hd", n=1)
    except openai.APIStatusError as exc:
        raise ToolFailure(f"the image service answered {exc.status_code}: "
                          f"{_message(exc)}") from None
    except openai.APITimeoutError:
        raise ToolFailure(f"the image service did not answer within {config.timeout:g} s"
                          ) from None
    except openai.APIConnectionError:
        raise ToolFailure("the image service could not be reached") from None
    urls = [d.url for d in image.data or [] if d.url]
    if not urls:
        raise ToolFailure("the image service gave no image address")
    return ToolResult("\n".join(urls), None)


def _message(exc: "Exception") -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        return str((body.get("error") or body).get("message") or body)[:300]
    return str(exc)[:300]
