"""The Message Batches part of the fake Anthropic API (shared/vendor-apis.md, "Message Batches"):
POST /v1/messages/batches, GET /v1/messages/batches/{id}, POST .../{id}/cancel and GET
.../{id}/results (JSONL, also reachable through the batch's results_url). The create call is
validated as the API does (custom_id present, well-formed and unique, params without "stream", a
Claude model, max_tokens and messages present); an item the model would refuse (max_tokens over
the model's maximum, an image that is not clean base64) comes back `errored` while the others
succeed. A batch is `in_progress` at creation and on the first GET, `ended` from the second GET on;
a cancel makes it `canceling`, and the next GET `ended` with every item `canceled`. A word
status-NNN in an item's last user text fails the create call with that status (e.g. 403); a word
foreign-results makes the batch's results_url point at another origin (which must not get the key).

The Handler of anthropic_fake.py mixes BatchRoutes in; it provides error(), reply(), summarize(),
last_user_text() and answer_message()."""
import base64
import binascii
import itertools
import json
import re
import threading
from fakeserver import log

# The largest max_tokens of the Claude 4.x models the fake serves (the API refuses more per item).
MAX_OUTPUT_TOKENS = 64000
CUSTOM_ID = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
BATCHES = {}  # id -> {"items": [(custom_id, result)], "status", "polls", "cancelled"}
BATCHES_LOCK = threading.Lock()
BATCH_IDS = itertools.count(1)
CREATED_AT = "2026-01-01T00:00:00Z"
EXPIRES_AT = "2026-01-02T00:00:00Z"


def create_problem(body):
    """What the API answers 400 for when creating this batch, or None."""
    requests = body.get("requests") if isinstance(body, dict) else None
    if not isinstance(requests, list) or not requests:
        return "requests: Field required and must be a non-empty list"
    seen = set()
    for n, item in enumerate(requests):
        custom_id = item.get("custom_id") if isinstance(item, dict) else None
        if custom_id is None:
            return "requests.%d.custom_id: Field required" % n
        if not isinstance(custom_id, str) or not CUSTOM_ID.match(custom_id):
            return "requests.%d.custom_id: String should match pattern '^[a-zA-Z0-9_-]{1,64}$'" % n
        if custom_id in seen:
            return "requests: custom_id values must be unique within a batch; '%s' appears more than once" % custom_id
        seen.add(custom_id)
        params = item.get("params")
        if not isinstance(params, dict):
            return "requests.%d.params: Field required" % n
        if "stream" in params:
            return "requests.%d.params.stream: Extra inputs are not permitted (batches do not stream)" % n
        for name in ("model", "max_tokens", "messages"):
            if name not in params:
                return "requests.%d.params.%s: Field required" % (n, name)
        model = params["model"]
        if not isinstance(model, str) or not model.startswith("claude-"):
            return "requests.%d.params.model: %s is not a model" % (n, json.dumps(model))
    return None


def item_problem(params):
    """Why the model would refuse this one request (the item comes back errored), or None."""
    if isinstance(params.get("max_tokens"), int) and params["max_tokens"] > MAX_OUTPUT_TOKENS:
        return "max_tokens: %d > %d, which is the maximum allowed number of output tokens for %s" % (
            params["max_tokens"], MAX_OUTPUT_TOKENS, params["model"])
    for message in params.get("messages", []):
        for block in message.get("content") if isinstance(message.get("content"), list) else []:
            source = block.get("source") or {}
            if source.get("type") == "base64":
                try:
                    base64.b64decode(source.get("data", ""), validate=True)
                except (binascii.Error, ValueError):
                    return "messages: %s source data is not valid base64" % block.get("type")
    return None


class BatchRoutes:
    """Request handling for /v1/messages/batches..., mixed into the fake's Handler."""

    def batch_post(self, path, auth, raw):
        if path == "/v1/messages/batches":
            return self.batch_create(auth, raw)
        batch_id, _, action = path[len("/v1/messages/batches/"):].partition("/")
        log(self.args, {"path": path, "method": "POST", "kind": "batch-" + (action or "?"), "auth": auth, "batch": batch_id})
        if action != "cancel":
            return self.error(404, "Not found")
        if auth != "ok":
            return self.error(401, "invalid x-api-key")
        with BATCHES_LOCK:
            batch = BATCHES.get(batch_id)
            if batch and batch["status"] == "in_progress":
                batch["status"], batch["cancelled"] = "canceling", True
            answer = batch and self.batch_json(batch_id, batch)
        if not batch:
            return self.error(404, "message batch %s not found" % batch_id)
        self.reply(200, answer)

    def batch_get(self, path, auth):
        batch_id, _, action = path[len("/v1/messages/batches/"):].partition("/")
        kind = "batch-results" if action == "results" else "batch-get"
        with BATCHES_LOCK:
            batch = BATCHES.get(batch_id) if auth == "ok" else None
            if batch and kind == "batch-get":
                # One step per poll: in_progress on the first, ended from the second; canceling ends at once.
                batch["polls"] += 1
                if batch["status"] == "canceling" or (batch["status"] == "in_progress" and batch["polls"] >= 2):
                    batch["status"] = "ended"
            status = batch and batch["status"]
            answer = batch and self.batch_json(batch_id, batch)
        log(self.args, {"path": path, "method": "GET", "kind": kind, "auth": auth, "batch": batch_id, "status": status})
        if action not in ("", "results"):
            return self.error(404, "Not found")
        if auth != "ok":
            return self.error(401, "invalid x-api-key")
        if not batch:
            return self.error(404, "message batch %s not found" % batch_id)
        if kind == "batch-get":
            return self.reply(200, answer)
        if status != "ended":
            return self.error(400, "message batch %s is still %s; results are available once it has ended" % (batch_id, status))
        # Results come unordered at the vendor: the fake gives them last first.
        lines = [json.dumps({"custom_id": custom_id, "result": {"type": "canceled"} if batch["cancelled"] else result})
                 for custom_id, result in reversed(batch["items"])]
        self.reply_raw(200, ("\n".join(lines) + "\n").encode(), "application/binary")

    def batch_create(self, auth, raw):
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        problem = "invalid JSON" if body is None else create_problem(body)
        items = body.get("requests") if isinstance(body, dict) and isinstance(body.get("requests"), list) else []
        summary = [{"custom_id": i.get("custom_id"), "text": self.last_user_text(i.get("params") or {}),
                    "params": self.summarize(json.loads(json.dumps(i.get("params") or {})))}
                   for i in items if isinstance(i, dict)]
        entry = {"path": "/v1/messages/batches", "method": "POST", "kind": "batch-create", "auth": auth,
                 "version": self.headers.get("anthropic-version"), "requests": summary, "problem": problem}
        log(self.args, entry)
        if auth != "ok":
            return self.error(401, "invalid x-api-key")
        if self.headers.get("anthropic-version") != "2023-06-01":
            return self.error(400, "anthropic-version header is required")
        if problem:
            return self.error(400, problem)
        for item in summary:
            for word in item["text"].split():
                if word.startswith("status-"):
                    return self.error(int(word[7:]), "fake failure %s" % word[7:])
        results = []
        for item, seen in zip(items, summary):
            problem = item_problem(item["params"])
            if problem:
                results.append((item["custom_id"], {"type": "errored", "error": {"type": "error", "error": {
                    "type": "invalid_request_error", "message": problem}, "request_id": "req_fake"}}))
            else:
                message = self.answer_message(item["params"], seen["text"], seen["params"])
                results.append((item["custom_id"], {"type": "succeeded", "message": message}))
        batch_id = "msgbatch_fake%d" % next(BATCH_IDS)
        with BATCHES_LOCK:
            foreign = any("foreign-results" in item["text"].split() for item in summary)
            BATCHES[batch_id] = {"items": results, "status": "in_progress", "polls": 0, "cancelled": False, "foreign": foreign}
            answer = self.batch_json(batch_id, BATCHES[batch_id])
        self.reply(200, answer)

    def batch_json(self, batch_id, batch):
        """The MessageBatch object."""
        n = len(batch["items"])
        counts = {"processing": 0, "succeeded": 0, "errored": 0, "canceled": 0, "expired": 0}
        ended = batch["status"] == "ended"
        if not ended:
            counts["processing"] = n
        elif batch["cancelled"]:
            counts["canceled"] = n
        else:
            for _, result in batch["items"]:
                counts[result["type"]] += 1
        return {"id": batch_id, "type": "message_batch", "processing_status": batch["status"], "request_counts": counts,
                "ended_at": CREATED_AT if ended else None, "created_at": CREATED_AT, "expires_at": EXPIRES_AT,
                "archived_at": None, "cancel_initiated_at": CREATED_AT if batch["cancelled"] else None,
                "results_url": "http://%s/v1/messages/batches/%s/results" % (
                    "results.invalid" if batch.get("foreign") else self.headers.get("host"), batch_id) if ended else None}
