"""The Batch API part of the fake Gemini API (shared/vendor-apis.md §3 "Batch"), inline requests only:
POST /v1beta/models/{m}:batchGenerateContent with {"batch":{"display_name","input_config":{"requests":
{"requests":[{"request":{GenerateContent body},"metadata":{"key"}}]}}}} answers an Operation named
batches/...; GET /v1beta/batches/{id} is that Operation (metadata.state BATCH_STATE_PENDING at
creation, RUNNING on the first GET, SUCCEEDED from the second, with the inlined responses in
`response` and `metadata.output`, shaped as GenerateContentBatchOutput in the API reference);
POST /v1beta/batches/{id}:cancel answers {} and makes a batch that has not ended CANCELLED with no
output (what a cancelled batch keeps is not documented: an assumption). The create call is checked as the API parses it (proto
JSON: unknown field names refused, contents required, base64 that decodes, the 20 MB inline cap);
a request the model refuses (maxOutputTokens out of range) gets an `error` Status in place of its
response while the others succeed. A word status-NNN in a request's last user text fails the
create call with that status (e.g. 403).

The Handler of gemini_fake.py mixes BatchRoutes in; it provides error(), deny(), reply(),
response(), summarize_body() and echo_pieces()."""
import base64
import binascii
import itertools
import json
import threading
from fakeserver import log

# The inline input of a batch is capped at 20 MB (the API counts the whole request body).
MAX_INLINE_BYTES = 20 * 1024 * 1024
# maxOutputTokens must be in [1, 65537) on the 2.5 models.
MAX_OUTPUT_TOKENS = 65536
ITEM_FIELDS = {"request", "metadata"}
BATCHES = {}  # id -> {"model", "display_name", "items", "outputs", "state", "polls"}
BATCHES_LOCK = threading.Lock()
BATCH_IDS = itertools.count(1)
TYPE_PREFIX = "type.googleapis.com/google.ai.generativelanguage.v1main."
TERMINAL = {"BATCH_STATE_SUCCEEDED", "BATCH_STATE_FAILED", "BATCH_STATE_CANCELLED", "BATCH_STATE_EXPIRED"}


def field(obj, snake, camel):
    return obj.get(snake, obj.get(camel)) if isinstance(obj, dict) else None


def create_problem(body):
    """The 400 the API answers for this batchGenerateContent body, or None; else the items."""
    batch = body.get("batch") if isinstance(body, dict) else None
    if not isinstance(batch, dict):
        return "batch: required field is missing", None
    config = field(batch, "input_config", "inputConfig")
    requests = field(field(config, "requests", "requests"), "requests", "requests")
    if not isinstance(requests, list) or not requests:
        return "batch.input_config: an inline requests list or a file_name is required", None
    for n, item in enumerate(requests):
        where = "batch.input_config.requests.requests[%d]" % n
        unknown = next((k for k in item if k not in ITEM_FIELDS), None) if isinstance(item, dict) else None
        if unknown:
            return "Invalid JSON payload received. Unknown name \"%s\" at '%s': Cannot find field." % (unknown, where), None
        request = item.get("request") if isinstance(item, dict) else None
        if not isinstance(request, dict) or not request.get("contents"):
            return "* BatchGenerateContentRequest.%s.request.contents: contents is not specified" % where, None
        for c, content in enumerate(request["contents"]):
            for p, part in enumerate(content.get("parts", [])):
                inline = field(part, "inline_data", "inlineData")
                if inline:
                    try:
                        base64.b64decode(inline.get("data", ""), validate=True)
                    except (binascii.Error, ValueError):
                        return "Invalid value at '%s.request.contents[%d].parts[%d].inline_data.data' (TYPE_BYTES), Base64 decoding failed" \
                            % (where, c, p), None
    return None, requests


def item_error(request):
    """The Status of a request the model refuses, or None."""
    config = field(request, "generation_config", "generationConfig") or {}
    limit = field(config, "max_output_tokens", "maxOutputTokens")
    if isinstance(limit, int) and not 1 <= limit <= MAX_OUTPUT_TOKENS:
        return {"code": 3, "message": "Unable to submit request because it has a maxOutputTokens value of %d but the supported range is "
                                      "from 1 (inclusive) to %d (exclusive). Update the value and try again." % (limit, MAX_OUTPUT_TOKENS + 1)}
    return None


class BatchRoutes:
    """Request handling for :batchGenerateContent and /v1beta/batches/..., mixed into the fake's Handler."""

    def batch_create(self, model, auth, raw):
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        problem, items = ("Invalid JSON payload received.", None) if body is None else create_problem(body)
        if len(raw) > MAX_INLINE_BYTES:
            problem = "Request payload size exceeds the limit: %d bytes." % MAX_INLINE_BYTES
        batch = (body or {}).get("batch") or {}
        summary = []
        for item in items or []:
            request = json.loads(json.dumps(item["request"]))
            media, files, text = self.summarize_body(request)
            summary.append({"metadata": item.get("metadata"), "text": text, "media": media, "files": files, "request": request})
        log(self.args, {"path": self.path, "method": "POST", "kind": "batch-create", "auth": auth, "model": model,
                        "display_name": field(batch, "display_name", "displayName"), "requests": summary, "problem": problem})
        if auth != "ok":
            return self.deny()
        if not model.startswith("gemini-"):
            return self.error(404, "models/%s is not found for API version v1beta, or is not supported for batchGenerateContent." % model)
        if problem:
            return self.error(400, problem)
        for item in summary:
            for word in item["text"].split():
                if word.startswith("status-"):
                    return self.error(int(word[7:]), "fake failure")
        outputs = []
        for item, seen in zip(items, summary):
            error = item_error(item["request"])
            out = {"error": error} if error else {"response": self.answer(seen)}
            if item.get("metadata") is not None:
                out["metadata"] = item["metadata"]
            outputs.append(out)
        batch_id = "fake%d" % next(BATCH_IDS)
        with BATCHES_LOCK:
            BATCHES[batch_id] = {"model": model, "display_name": field(batch, "display_name", "displayName"), "items": items,
                                 "outputs": outputs, "state": "BATCH_STATE_PENDING", "polls": 0}
            answer = self.batch_json(batch_id, BATCHES[batch_id])
        self.reply(200, answer)

    def answer(self, seen):
        """The GenerateContentResponse the model would give, built as the streamed answer adds up."""
        if "tool" in seen["text"].split():
            return self.response([{"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}}], 3, "STOP")
        pieces = self.echo_pieces(seen["text"], seen["media"], seen["files"])
        return self.response([{"text": "".join(pieces)}], len(pieces), "STOP")

    def batch_get(self, batch_id, auth):
        with BATCHES_LOCK:
            batch = BATCHES.get(batch_id) if auth == "ok" else None
            if batch:
                # One state per poll: PENDING at creation, RUNNING on the first GET, SUCCEEDED from the second.
                batch["polls"] += 1
                if batch["state"] not in TERMINAL:
                    batch["state"] = "BATCH_STATE_RUNNING" if batch["polls"] < 2 else "BATCH_STATE_SUCCEEDED"
            answer = batch and self.batch_json(batch_id, batch)
        log(self.args, {"path": self.path, "method": "GET", "kind": "batch-get", "auth": auth, "batch": batch_id,
                        "state": answer and answer["metadata"]["state"]})
        if auth != "ok":
            return self.deny()
        if not batch:
            return self.error(404, "Requested entity was not found.")
        self.reply(200, answer)

    def batch_cancel(self, batch_id, auth):
        with BATCHES_LOCK:
            batch = BATCHES.get(batch_id) if auth == "ok" else None
            if batch and batch["state"] not in TERMINAL:
                batch["state"] = "BATCH_STATE_CANCELLED"
        log(self.args, {"path": self.path, "method": "POST", "kind": "batch-cancel", "auth": auth, "batch": batch_id})
        if auth != "ok":
            return self.deny()
        if not batch:
            return self.error(404, "Requested entity was not found.")
        self.reply(200, {})

    @staticmethod
    def batch_json(batch_id, batch):
        """The batch's Operation: GenerateContentBatch metadata, and the output once it succeeded."""
        n, state = len(batch["items"]), batch["state"]
        stats = {"requestCount": str(n)}
        metadata = {"@type": TYPE_PREFIX + "GenerateContentBatch", "name": "batches/" + batch_id, "model": "models/" + batch["model"],
                    "displayName": batch["display_name"] or "", "inputConfig": {"requests": {"requests": batch["items"]}},
                    "createTime": "2026-01-01T00:00:00Z", "updateTime": "2026-01-01T00:00:00Z", "batchStats": stats, "state": state}
        operation = {"name": "batches/" + batch_id, "metadata": metadata}
        if state == "BATCH_STATE_SUCCEEDED":
            failed = sum(1 for o in batch["outputs"] if "error" in o)
            stats.update({"successfulRequestCount": str(n - failed), "failedRequestCount": str(failed)})
            output = {"inlinedResponses": {"inlinedResponses": batch["outputs"]}}
            metadata["output"] = output
            operation["response"] = dict({"@type": TYPE_PREFIX + "GenerateContentBatchOutput"}, **output)
        elif state not in TERMINAL:
            stats["pendingRequestCount"] = str(n)
        operation["done"] = state in TERMINAL
        return operation
