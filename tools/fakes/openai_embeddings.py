"""POST /v1/embeddings of the fake OpenAI server: the vendor's request checks and answer shape, with
vectors that are not a model's but are stable and meaningful enough for retrieval tests: each
word's character trigrams hashed into DIMENSIONS buckets, L2-normalised, so texts sharing word
stems ("symmetric", "symmetry") are close even where a stemmer tells them apart."""

import hashlib
import math

from fakeserver import log

DIMENSIONS = 256
MODELS = {"text-embedding-3-small", "text-embedding-3-large", "text-embedding-ada-002"}
MAX_INPUTS = 2048


def vector(text):
    v = [0.0] * DIMENSIONS
    for word in "".join(c.lower() if c.isalnum() else " " for c in text).split():
        padded = "^" + word + "$"
        for i in range(len(padded) - 2):
            bucket = int.from_bytes(hashlib.md5(padded[i:i + 3].encode()).digest()[:4], "little") % DIMENSIONS
            v[bucket] += 1.0
    norm = math.sqrt(sum(x * x for x in v)) or 1.0
    return [x / norm for x in v]


def embeddings(handler, body, auth_state):
    inputs = body.get("input")
    model = body.get("model")
    log(handler.args, {"path": handler.path, "auth": auth_state, "model": model,
                       "input": inputs if isinstance(inputs, list) else [inputs], "encoding_format": body.get("encoding_format")})
    if handler.args.key and auth_state != "ok":
        return handler.error(401, "Incorrect API key provided: sk-****.")
    if model not in MODELS:
        return handler.error(404, "The model `%s` does not exist or you do not have access to it." % model)
    if isinstance(inputs, str):
        inputs = [inputs]
    if not isinstance(inputs, list) or not inputs or not all(isinstance(t, str) and t for t in inputs):
        return handler.error(400, "'$.input' is invalid. Please check the API reference.", param="input")
    if len(inputs) > MAX_INPUTS:
        return handler.error(400, "'$.input' must have at most %d items." % MAX_INPUTS, param="input")
    data = [{"object": "embedding", "index": i, "embedding": vector(t)} for i, t in enumerate(inputs)]
    tokens = sum(len(t.split()) for t in inputs)
    handler.send_json(200, {"object": "list", "data": data, "model": model,
                            "usage": {"prompt_tokens": tokens, "total_tokens": tokens}})
