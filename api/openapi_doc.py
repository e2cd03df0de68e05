"""The OpenAPI document says what the server takes, no more and no less.

Every route parses its JSON with the edge's strict parser (api/edge.py): the event log's codec
holds integers within 64 bits only. The models FastAPI documents do not say so where a value is
free (``Any``, a dict's values, the properties a model ignores beyond its own), so a client
generating from the document (schemathesis, or a real SDK generator) would send integers the
server refuses. This pass, run once when the document is first built, writes the codec's bound
into the document:
- a free value becomes ``JsonValue``: any JSON whose integers fit in 64 bits;
- an integer without bounds gets the codec's;
- an object that does not forbid other properties says they are JsonValues.
Nothing here changes what the server accepts: it says what it already accepts."""

from __future__ import annotations

from typing import Any

from api.edge import INT_MAX, INT_MIN

__all__ = ["JSON_VALUE", "with_codec_bounds"]

JSON_VALUE = "JsonValue"
_REF = {"$ref": f"#/components/schemas/{JSON_VALUE}"}
#: keys that make a schema say something about its value's type
_TYPED = {"type", "$ref", "anyOf", "oneOf", "allOf", "enum", "const", "not", "properties",
          "items", "prefixItems"}


def _json_value() -> dict[str, Any]:
    return {"description": "any JSON value the event log can hold: integers within 64 bits",
            "anyOf": [{"type": "string"}, {"type": "integer", "minimum": INT_MIN,
                                           "maximum": INT_MAX},
                      {"type": "number"}, {"type": "boolean"}, {"type": "null"},
                      {"type": "array", "items": dict(_REF)},
                      {"type": "object", "additionalProperties": dict(_REF)}]}


def _free(schema: dict[str, Any]) -> bool:
    return not (_TYPED & schema.keys())


def _bound(schema: Any) -> Any:
    """``schema`` with the codec's bounds written in, in place (and returned)."""
    if not isinstance(schema, dict):
        return schema
    if _free(schema):
        schema.update(_REF)
        return schema
    kind = schema.get("type")
    kinds = kind if isinstance(kind, list) else [kind]
    # (a number written with a fraction or an exponent is a float and has no such bound)
    if "integer" in kinds:
        if "minimum" not in schema and "exclusiveMinimum" not in schema:
            schema["minimum"] = INT_MIN
        if "maximum" not in schema and "exclusiveMaximum" not in schema:
            schema["maximum"] = INT_MAX
    if "object" in kinds or "properties" in schema:
        extra = schema.get("additionalProperties", True)
        if extra is True:
            schema["additionalProperties"] = dict(_REF)
        elif isinstance(extra, dict):
            _bound(extra)
    for key in ("properties", "patternProperties", "$defs"):
        for sub in (schema.get(key) or {}).values():
            _bound(sub)
    for key in ("anyOf", "oneOf", "allOf", "prefixItems"):
        for sub in schema.get(key) or ():
            _bound(sub)
    for key in ("items", "not", "contains"):
        if isinstance(schema.get(key), dict):
            _bound(schema[key])
    return schema


def with_codec_bounds(doc: dict[str, Any]) -> dict[str, Any]:
    """The whole document (request and response schemas alike), bounded."""
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    for name, schema in list(schemas.items()):
        schemas[name] = _bound(schema)
    schemas[JSON_VALUE] = _json_value()
    for item in (doc.get("paths") or {}).values():
        for operation in item.values():
            if not isinstance(operation, dict):
                continue
            for parameter in operation.get("parameters") or ():
                _bound(parameter.get("schema"))
            for media in ((operation.get("requestBody") or {}).get("content") or {}).values():
                _bound(media.get("schema"))
            for response in (operation.get("responses") or {}).values():
                for media in (response.get("content") or {}).values():
                    _bound(media.get("schema"))
    return doc
