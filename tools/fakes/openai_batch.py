"""The Batch API of the fake OpenAI server (openai_fake.py), as shared/vendor-apis.md §2 "Batch" has it:
POST /v1/files (multipart, purpose=batch, a JSONL file checked line by line), POST /v1/batches,
GET /v1/batches and /v1/batches/{id}, POST /v1/batches/{id}/cancel, GET /v1/files/{id} and its /content.

A batch moves one state per GET of it (validating -> in_progress -> finalizing -> completed), so a
poller always sees it running first; a cancel makes it cancelling, and cancelled on the next GET. Its
lines are answered when it completes, by the handler's batch_answer(): a 200 goes to the output file,
any other status to the error file, both as {"id","custom_id","response":{status_code,request_id,body},
"error":null}. Lines of a cancelled or expired batch get error {code,message} in the error file instead.
Hooks in metadata.description: "fail-batch" fails the batch in validation, "expire-batch" expires it
after in_progress, "slow-create" answers a create only SLOW_CREATE_SECONDS after storing the batch
(a client that dies meanwhile never learns its id, as when a connection drops after the vendor acted).

Every request is logged as one JSON line; an upload's entry holds its lines, each body summarized as
the chat requests are (media replaced by their sizes), so tests can assert on the JSONL sent."""

import json
import re
import threading
import time
import uuid
from urllib.parse import parse_qs, urlsplit

import openai_media
from fakeserver import log

# The vendor's limits on a batch input file.
MAX_LINES = 50_000
MAX_FILE_BYTES = 200 * 1000 * 1000
# The endpoints a batch may name, and the one whose lines this fake can answer.
ENDPOINTS = {"/v1/responses", "/v1/chat/completions", "/v1/embeddings", "/v1/completions", "/v1/moderations",
             "/v1/images/generations", "/v1/images/edits", "/v1/videos"}
CHAT = "/v1/chat/completions"
# Metadata: at most 16 pairs, keys of 64 characters, values of 512.
MAX_METADATA_PAIRS, MAX_METADATA_KEY, MAX_METADATA_VALUE = 16, 64, 512
# The next state on a GET; the hooks' detours.
NEXT = {"validating": "in_progress", "in_progress": "finalizing", "finalizing": "completed", "cancelling": "cancelled"}
RUNNING = {"validating", "in_progress", "finalizing"}
WINDOW_SECONDS = 24 * 3600
# How long the "slow-create" hook holds a create's answer: long enough to kill the client meanwhile.
SLOW_CREATE_SECONDS = 10

_LOCK = threading.Lock()
FILES = {}    # id -> {"object": the file object, "data": bytes}
BATCHES = {}  # id -> {"object": the batch object, "lines": the input lines}


def new_id(prefix):
    return prefix + uuid.uuid4().hex[:24]


def post(handler, raw, auth_state):
    """Answers a batch POST; False when the path is not one of them."""
    path = handler.path
    if path == "/v1/files":
        return upload(handler, raw, auth_state) or True
    if path == "/v1/batches":
        return create(handler, raw, auth_state) or True
    match = re.fullmatch(r"/v1/batches/([^/?]+)/cancel", path)
    if match:
        return cancel(handler, match.group(1), auth_state) or True
    return False


def get(handler, auth_state):
    """Answers a batch or file GET; False when the path is not one of them."""
    url = urlsplit(handler.path)
    routes = [(r"/v1/batches", lambda: listing(handler, parse_qs(url.query))),
              (r"/v1/batches/([^/]+)", lambda i: retrieve(handler, i)),
              (r"/v1/files/([^/]+)", lambda i: file_object(handler, i)),
              (r"/v1/files/([^/]+)/content", lambda i: content(handler, i))]
    for pattern, answer in routes:
        match = re.fullmatch(pattern, url.path)
        if match:
            log(handler.args, {"path": url.path, "method": "GET", "query": url.query, "auth": auth_state})
            if handler.args.key and auth_state != "ok":
                handler.error(401, "Incorrect API key provided: sk-****.")
            else:
                answer(*match.groups())
            return True
    return False


def upload(handler, raw, auth_state):
    entry = {"path": handler.path, "method": "POST", "auth": auth_state, "content_type": handler.headers.get("content-type")}
    try:
        parts = openai_media.parse_multipart(handler.headers.get("content-type"), raw)
    except ValueError as err:
        entry["upload_error"] = str(err)
        log(handler.args, entry)
        return handler.error(400, "Could not parse multipart form: %s" % err)
    fields = {name: data.decode("utf-8") for name, filename, _, data in parts if filename is None}
    files = [(name, filename, ctype, data) for name, filename, ctype, data in parts if filename is not None]
    entry["fields"] = fields
    entry["files"] = [{"field": f[0], "filename": f[1], "content_type": f[2], "bytes": len(f[3])} for f in files]
    lines, problem = None, None
    if handler.args.key and auth_state != "ok":
        log(handler.args, entry)
        return handler.error(401, "Incorrect API key provided: sk-****.")
    if fields.get("purpose") != "batch":
        problem = ("'purpose' must be 'batch' for a batch input file, not %r" % fields.get("purpose"), "purpose")
    elif len(files) != 1 or files[0][0] != "file":
        problem = ("you must provide one file in the 'file' field", "file")
    elif not files[0][1].endswith(".jsonl"):
        problem = ("Invalid file format for Batch API. Must be .jsonl", "file")
    else:
        lines, message = parse_lines(files[0][3])
        problem = (message, "file") if message else None
    if lines is not None:
        entry["lines"] = [dict(line, body=handler.summarize(json.loads(json.dumps(line["body"])))) for line in lines]
    if problem:
        entry["upload_error"] = problem[0]
        log(handler.args, entry)
        return handler.error(400, problem[0], param=problem[1])
    with _LOCK:
        obj = store_file(files[0][1], files[0][3], "batch")
    entry["file_id"] = obj["id"]
    log(handler.args, entry)
    handler.send_json(200, obj)


def parse_lines(data):
    """(lines, None) of a valid batch input file, or (None, what is wrong with it)."""
    if len(data) > MAX_FILE_BYTES:
        return None, "The batch input file is larger than the %d bytes allowed" % MAX_FILE_BYTES
    text = data.decode("utf-8", errors="replace")
    rows = text.split("\n")
    if rows and rows[-1] == "":
        rows.pop()
    if not rows:
        return None, "The batch input file is empty"
    if len(rows) > MAX_LINES:
        return None, "The batch input file has %d lines; at most %d are allowed" % (len(rows), MAX_LINES)
    lines, seen = [], set()
    for number, row in enumerate(rows, 1):
        try:
            line = json.loads(row)
        except ValueError:
            return None, "Line %d of the batch input file is not valid JSON" % number
        if not isinstance(line, dict) or set(line) != {"custom_id", "method", "url", "body"}:
            return None, "Line %d must be an object with exactly custom_id, method, url and body" % number
        custom_id = line["custom_id"]
        if not isinstance(custom_id, str) or not custom_id:
            return None, "Line %d has no custom_id" % number
        if custom_id in seen:
            return None, "Line %d: the custom_id %r is not unique in the file" % (number, custom_id)
        seen.add(custom_id)
        if line["method"] != "POST":
            return None, "Line %d: method must be POST, not %r" % (number, line["method"])
        if line["url"] != CHAT:
            return None, "Line %d: url must be %s, not %r" % (number, CHAT, line["url"])
        if not isinstance(line["body"], dict):
            return None, "Line %d: body must be a JSON object" % number
        lines.append(line)
    return lines, None


def store_file(filename, data, purpose):
    """Keeps a file (under _LOCK) and returns its vendor object."""
    obj = {"id": new_id("file-"), "object": "file", "bytes": len(data), "created_at": int(time.time()),
           "filename": filename, "purpose": purpose}
    FILES[obj["id"]] = {"object": obj, "data": data}
    return obj


def create(handler, raw, auth_state):
    try:
        body = json.loads(raw)
    except ValueError:
        body = None
    log(handler.args, {"path": handler.path, "method": "POST", "auth": auth_state, "body": body})
    if handler.args.key and auth_state != "ok":
        return handler.error(401, "Incorrect API key provided: sk-****.")
    if not isinstance(body, dict):
        return handler.error(400, "We could not parse the JSON body of your request.")
    metadata = body.get("metadata") or {}
    problem = None
    if body.get("endpoint") not in ENDPOINTS:
        problem = ("Invalid 'endpoint': %r" % body.get("endpoint"), "endpoint")
    elif body.get("completion_window") != "24h":
        problem = ("Invalid 'completion_window': %r. Only '24h' is supported." % body.get("completion_window"), "completion_window")
    elif not isinstance(metadata, dict) or len(metadata) > MAX_METADATA_PAIRS or any(
            not isinstance(v, str) or len(k) > MAX_METADATA_KEY or len(v) > MAX_METADATA_VALUE for k, v in metadata.items()):
        problem = ("Invalid 'metadata': at most %d string pairs, keys of %d and values of %d characters"
                   % (MAX_METADATA_PAIRS, MAX_METADATA_KEY, MAX_METADATA_VALUE), "metadata")
    with _LOCK:
        stored = FILES.get(body.get("input_file_id"))
        if problem is None and (stored is None or stored["object"]["purpose"] != "batch"):
            problem = ("Invalid 'input_file_id': %r is not a batch input file" % body.get("input_file_id"), "input_file_id")
        if problem is None and body["endpoint"] != CHAT:
            problem = ("The input file's lines are for %s, not %s" % (CHAT, body["endpoint"]), "endpoint")
        if problem is None:
            lines, _ = parse_lines(stored["data"])
            now = int(time.time())
            obj = {"id": new_id("batch_"), "object": "batch", "endpoint": body["endpoint"], "errors": None,
                   "input_file_id": body["input_file_id"], "completion_window": "24h", "status": "validating",
                   "output_file_id": None, "error_file_id": None, "created_at": now, "in_progress_at": None,
                   "expires_at": now + WINDOW_SECONDS, "finalizing_at": None, "completed_at": None, "failed_at": None,
                   "expired_at": None, "cancelling_at": None, "cancelled_at": None,
                   "request_counts": {"total": len(lines), "completed": 0, "failed": 0}, "metadata": metadata or None}
            BATCHES[obj["id"]] = {"object": obj, "lines": lines}
            answer = json.loads(json.dumps(obj))
    if problem:
        return handler.error(400, problem[0], param=problem[1])
    if "slow-create" in str(metadata.get("description", "")):
        time.sleep(SLOW_CREATE_SECONDS)
    handler.send_json(200, answer)


def retrieve(handler, batch_id):
    """GET of one batch: it moves to its next state first."""
    with _LOCK:
        batch = BATCHES.get(batch_id)
        if batch:
            advance(handler, batch)
            answer = json.loads(json.dumps(batch["object"]))
    if not batch:
        return handler.error(404, "No batch found with id '%s'." % batch_id, param="batch_id", code=None)
    handler.send_json(200, answer)


def advance(handler, batch):
    """One step of a batch's life (under _LOCK), with the hooks' detours and the answers at its end."""
    obj = batch["object"]
    hook = (obj.get("metadata") or {}).get("description", "")
    status = obj["status"]
    if status == "validating" and "fail-batch" in hook:
        obj["errors"] = {"object": "list", "data": [{"code": "invalid_request", "message": "fake failure of the whole batch (fail-batch)",
                                                     "param": None, "line": None}]}
        return finish(handler, batch, "failed")
    if status == "in_progress" and "expire-batch" in hook:
        return finish(handler, batch, "expired")
    following = NEXT.get(status)
    if following in ("completed", "cancelled"):
        return finish(handler, batch, following)
    if following:
        obj["status"] = following
        obj[following + "_at"] = int(time.time())


def finish(handler, batch, status):
    """Ends a batch in `status`: answers its lines (completed) or marks them not run, and files them."""
    obj = batch["object"]
    obj["status"] = status
    obj[status + "_at"] = int(time.time())
    if status == "failed":
        return
    output, errors = [], []
    for line in batch["lines"]:
        record = {"id": new_id("batch_req_"), "custom_id": line["custom_id"], "response": None, "error": None}
        if status == "completed":
            code, body = handler.batch_answer(line["body"])
            record["response"] = {"status_code": code, "request_id": new_id("req_"), "body": body}
            (output if code == 200 else errors).append(record)
        else:
            word = "cancelled" if status == "cancelled" else "expired"
            record["error"] = {"code": "batch_" + word, "message": "This request was not executed because the batch was %s." % word}
            errors.append(record)
    counts = obj["request_counts"]
    counts["completed"] = len(output)
    counts["failed"] = len(errors) if status == "completed" else 0
    for records, key, suffix in ((output, "output_file_id", "output"), (errors, "error_file_id", "error")):
        if records:
            data = "".join(json.dumps(r) + "\n" for r in records).encode()
            obj[key] = store_file("%s_%s.jsonl" % (obj["id"], suffix), data, "batch_output")["id"]


def cancel(handler, batch_id, auth_state):
    log(handler.args, {"path": handler.path, "method": "POST", "auth": auth_state})
    if handler.args.key and auth_state != "ok":
        return handler.error(401, "Incorrect API key provided: sk-****.")
    with _LOCK:
        batch = BATCHES.get(batch_id)
        status = batch["object"]["status"] if batch else None
        if status in RUNNING:
            batch["object"]["status"] = "cancelling"
            batch["object"]["cancelling_at"] = int(time.time())
        answer = json.loads(json.dumps(batch["object"])) if batch else None
    if not batch:
        return handler.error(404, "No batch found with id '%s'." % batch_id, param="batch_id", code=None)
    if status not in RUNNING and status != "cancelling":
        return handler.error(409, "Cannot cancel a batch with status '%s'." % status)
    handler.send_json(200, answer)


def listing(handler, query):
    """GET /v1/batches: newest first, `limit` (1-100, default 20) after the id `after`."""
    try:
        limit = int(query.get("limit", ["20"])[0])
    except ValueError:
        limit = 0
    if not 1 <= limit <= 100:
        return handler.error(400, "Invalid 'limit': it must be between 1 and 100.", param="limit")
    with _LOCK:
        batches = [b["object"] for b in reversed(BATCHES.values())]
        ids = [o["id"] for o in batches]
        after = query.get("after", [None])[0]
        start = ids.index(after) + 1 if after in ids else 0
        page = json.loads(json.dumps(batches[start:start + limit]))
    handler.send_json(200, {"object": "list", "data": page, "first_id": page[0]["id"] if page else None,
                            "last_id": page[-1]["id"] if page else None, "has_more": start + limit < len(batches)})


def file_object(handler, file_id):
    with _LOCK:
        stored = FILES.get(file_id)
    if not stored:
        return handler.error(404, "No such File object: %s" % file_id, param="id", code=None)
    handler.send_json(200, stored["object"])


def content(handler, file_id):
    with _LOCK:
        stored = FILES.get(file_id)
    if not stored:
        return handler.error(404, "No such File object: %s" % file_id, param="id", code=None)
    handler.send_response(200)
    handler.send_header("content-type", "application/octet-stream")
    handler.send_header("content-length", str(len(stored["data"])))
    handler.send_header("x-request-id", "req_fake")
    handler.end_headers()
    handler.wfile.write(stored["data"])
