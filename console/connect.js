// The Connect protocol (connectrpc.com/docs/protocol) over fetch with the JSON codec: unary calls
// (application/json), server streaming (application/connect+json envelopes read from the response
// body as they arrive) and client streaming (the request envelopes sent as one body). Errors of either shape become a ConnectError with the code name.

/** An RPC that ended with an error: `code` is Connect's name (`invalid_argument`, `unavailable`...). */
export class ConnectError extends Error {
  constructor(code, message, metadata = {}) {
    super(message ? `${code}: ${message}` : code);
    this.name = 'ConnectError';
    this.code = code;
    this.rawMessage = message;
    this.metadata = metadata;
  }
}

// Envelope flags of Connect streaming: a compressed message, and the end-stream message.
const FLAG_COMPRESSED = 0x01;
const FLAG_END_STREAM = 0x02;
const ENVELOPE_HEADER_BYTES = 5;

// The code an HTTP status stands for when the body is not a Connect error (a proxy's page, say),
// as Connect's spec maps them.
const CODE_OF_HTTP_STATUS = {
  400: 'internal', 401: 'unauthenticated', 403: 'permission_denied', 404: 'unimplemented',
  429: 'unavailable', 502: 'unavailable', 503: 'unavailable', 504: 'unavailable',
};

/** The error a non-200 answer carries: Connect's `{"code", "message"}` body when there is one. */
function errorOfResponse(status, text) {
  try {
    const body = JSON.parse(text);
    if (body && typeof body.code === 'string') return new ConnectError(body.code, body.message ?? '');
  } catch { /* not JSON: fall through to the status */ }
  return new ConnectError(CODE_OF_HTTP_STATUS[status] ?? 'unknown', `HTTP ${status}: ${text.trim().slice(0, 500)}`);
}

function headersFor(contentType, apiKey) {
  const headers = { 'content-type': contentType, 'connect-protocol-version': '1' };
  if (apiKey) headers.authorization = `Bearer ${apiKey}`;
  return headers;
}

/** Calls a unary method with a JSON request object; resolves to the response object. */
export async function unary(path, request, { apiKey = '', signal } = {}) {
  const response = await fetch(path, {
    method: 'POST', headers: headersFor('application/json', apiKey), body: JSON.stringify(request), signal,
  });
  const text = await response.text();
  if (!response.ok) throw errorOfResponse(response.status, text);
  return text ? JSON.parse(text) : {};
}

/** One enveloped JSON message: flags byte, 4-byte big-endian length, the UTF-8 JSON. */
export function envelope(object, flags = 0) {
  const json = new TextEncoder().encode(JSON.stringify(object));
  const bytes = new Uint8Array(ENVELOPE_HEADER_BYTES + json.length);
  bytes[0] = flags;
  new DataView(bytes.buffer).setUint32(1, json.length);
  bytes.set(json, ENVELOPE_HEADER_BYTES);
  return bytes;
}

function concat(a, b) {
  if (a.length === 0) return b;
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

/**
 * Calls a server-streaming method; an async generator of the response messages as they arrive.
 * Ends normally on an end-stream message without error; throws its ConnectError otherwise, and
 * throws when the body ends without one (a cut connection is never taken for a whole answer).
 */
export function serverStream(path, request, options = {}) {
  return streamCall(path, envelope(request), options);
}

/**
 * Calls a client-streaming method (IndexDocument): every request message enveloped in one body,
 * which fetch can send over HTTP/1.1 too; resolves to the single response message.
 */
export async function clientStream(path, requests, options = {}) {
  const body = new Blob(requests.map((request) => envelope(request)));
  let response = null;
  for await (const message of streamCall(path, body, options)) {
    if (response) throw new ConnectError('internal', `${path} answered more than one message`);
    response = message;
  }
  if (!response) throw new ConnectError('internal', `${path} ended without its response`);
  return response;
}

async function* streamCall(path, body, { apiKey = '', signal } = {}) {
  const response = await fetch(path, {
    method: 'POST', headers: headersFor('application/connect+json', apiKey), body, signal,
  });
  const type = response.headers.get('content-type') ?? '';
  if (!response.ok || !type.startsWith('application/connect+json')) {
    throw errorOfResponse(response.status, await response.text());
  }
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffered = new Uint8Array(0);
  try {
    for (;;) {
      while (buffered.length >= ENVELOPE_HEADER_BYTES) {
        const flags = buffered[0];
        const length = new DataView(buffered.buffer, buffered.byteOffset).getUint32(1);
        if (buffered.length < ENVELOPE_HEADER_BYTES + length) break;
        const payload = buffered.subarray(ENVELOPE_HEADER_BYTES, ENVELOPE_HEADER_BYTES + length);
        buffered = buffered.slice(ENVELOPE_HEADER_BYTES + length);
        if (flags & FLAG_COMPRESSED) {
          throw new ConnectError('internal', 'the server sent a compressed message, which the console did not offer to read');
        }
        const message = length ? JSON.parse(decoder.decode(payload)) : {};
        if (flags & FLAG_END_STREAM) {
          if (message.error) throw new ConnectError(message.error.code ?? 'unknown', message.error.message ?? '', message.metadata);
          return;
        }
        yield message;
      }
      const { done, value } = await reader.read();
      if (done) break;
      buffered = concat(buffered, value);
    }
  } finally {
    reader.releaseLock();
  }
  throw new ConnectError('internal', 'the answer ended without its end-of-stream message (connection cut?)');
}
