"""What a fake model answers when a request carries a response schema, shared by the three vendor
fakes: the test's script if the request has one ("answer-N: <JSON>" lines in the user's text, the
N-th for the N-th attempt, counted by the assistant turns already in the request, the last line
for any later attempt), otherwise a sample value that fits the schema. And OpenAI's check of a
schema sent with `strict: true`, with the error its API gives for a schema outside the subset."""

import json
import re

SCRIPT_LINE = re.compile(r"^answer-(\d+): (.+)$", re.MULTILINE)
STRICT_KEYWORDS = {"type", "properties", "required", "additionalProperties", "items", "enum", "const", "anyOf", "$ref",
                   "$defs", "definitions", "description", "title", "$schema", "pattern", "format", "multipleOf", "maximum",
                   "exclusiveMaximum", "minimum", "exclusiveMinimum", "minItems", "maxItems"}


def answer(user_texts, attempt, schema):
    """The answer's JSON text for the attempt-th try (1-based)."""
    script = {}
    for text in user_texts:
        for match in SCRIPT_LINE.finditer(text):
            script[int(match.group(1))] = match.group(2).strip()
    if script:
        return script.get(attempt, script[max(script)])
    return json.dumps(sample(schema))


def sample(schema, root=None):
    """A JSON value that fits an OpenAPI-subset schema (or a plain JSON Schema: const, local $ref)."""
    root = root or schema
    if not isinstance(schema, dict):
        return None
    if "$ref" in schema:
        return sample(root.get("$defs", {}).get(schema["$ref"].rpartition("/")[2], {}), root)
    if "const" in schema:
        return schema["const"]
    if schema.get("anyOf"):
        return sample(schema["anyOf"][0], root)
    if schema.get("enum"):
        return schema["enum"][0]
    kind = schema.get("type")
    kind = next((k for k in kind if k != "null"), None) if isinstance(kind, list) else kind
    kind = (kind or ("object" if "properties" in schema else "string")).upper()
    if kind == "OBJECT":
        return {name: sample(sub, root) for name, sub in (schema.get("properties") or {}).items()}
    if kind == "ARRAY":
        return [sample(schema.get("items") or {}, root) for _ in range(max(1, int(schema.get("minItems", 1))))]
    if kind == "INTEGER":
        return int(schema.get("minimum", 7))
    if kind == "NUMBER":
        return float(schema.get("minimum", 2.5))
    if kind == "BOOLEAN":
        return True
    return "2026-01-01T00:00:00Z" if schema.get("format") == "date-time" else "fake text"


def strict_error(schema, context="()"):
    """None if `schema` fits OpenAI's strict subset, else the message its API answers with."""
    if not isinstance(schema, dict):
        return "Invalid schema for response_format 'response': schema must be a JSON Schema of 'type: \"object\"', got '%s'." % type(schema).__name__
    if context == "()" and schema.get("type") != "object":
        return "Invalid schema for response_format 'response': schema must be a JSON Schema of 'type: \"object\"', got 'type: \"%s\"'." % schema.get("type")
    for key in schema:
        if key not in STRICT_KEYWORDS:
            return "Invalid schema for response_format 'response': In context=%s, '%s' is not permitted." % (context, key)
    types = schema.get("type")
    types = types if isinstance(types, list) else [types]
    if "object" in types or "properties" in schema:
        if schema.get("additionalProperties") is not False:
            return ("Invalid schema for response_format 'response': In context=%s, 'additionalProperties' is required to be "
                    "supplied and to be false." % context)
        missing = [name for name in schema.get("properties", {}) if name not in schema.get("required", [])]
        if missing:
            return ("Invalid schema for response_format 'response': In context=%s, 'required' is required to be supplied and "
                    "to be an array including every key in properties. Missing '%s'." % (context, missing[0]))
        for name, sub in schema.get("properties", {}).items():
            error = strict_error(sub, "('properties', '%s')" % name)
            if error:
                return error
    children = [("items", schema["items"])] if "items" in schema else []
    children += [("anyOf", s) for s in schema.get("anyOf", [])]
    children += [("$defs", s) for s in schema.get("$defs", {}).values()]
    for where, sub in children:
        error = strict_error(sub, "('%s',)" % where)
        if error:
            return error
    return None
