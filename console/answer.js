// The answer panel: renders a Generate stream's events as they arrive (the routed line with its
// adaptations, text deltas, tool calls, media, usage and cost, the stop reason) and how it ended.
// `data-state` on the answer says where it is: idle, streaming, done, error or cancelled.

/** Bytes from proto3 JSON's base64. */
export function base64Bytes(text) {
  const binary = atob(text ?? '');
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i += 1) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

function enumWords(value, prefix) {
  return String(value ?? '').replace(prefix, '').toLowerCase().replaceAll('_', ' ');
}

/** Micro-dollars (a uint64 JSON string) as dollars, with enough places for a single call. */
function cost(micros) {
  return `$${(Number(micros ?? 0) / 1e6).toFixed(6)}`;
}

export class AnswerView {
  constructor({ answer, routed, usage, error, media }) {
    Object.assign(this, { answerEl: answer, routedEl: routed, usageEl: usage, errorEl: error, mediaEl: media });
    this.reset();
  }

  /** The answer's plain text so far, for reading it aloud. */
  get text() {
    return this.chunks.join('');
  }

  /** The model that answered (the last `routed`), for the transcript. */
  get model() {
    return this.lastModel;
  }

  reset() {
    this.chunks = [];
    this.routes = [];
    this.lastModel = '';
    this.pendingMedia = new Map();  // mime type → chunks until `last`
    this.answerEl.replaceChildren();
    this.mediaEl.replaceChildren();
    for (const el of [this.routedEl, this.usageEl, this.errorEl]) {
      el.replaceChildren();
      el.hidden = true;
    }
    this.setState('idle');
  }

  setState(state) {
    this.answerEl.dataset.state = state;
    this.answerEl.setAttribute('aria-busy', String(state === 'streaming'));
  }

  start() {
    this.reset();
    this.setState('streaming');
  }

  /** One GenerateEvent in proto3 JSON: exactly one of its members is set. */
  event(event) {
    if (event.routed) this.showRouted(event.routed);
    else if (event.text) this.appendText(event.text.text ?? '');
    else if (event.toolCall) this.showToolCall(event.toolCall);
    else if (event.media) this.addMedia(event.media);
    else if (event.usage) this.showUsage(event.usage);
    else if (event.finished) this.showFinish(event.finished);
  }

  showRouted(info) {
    // A second `routed` means the first attempt failed before any content and was retried or fell back.
    this.lastModel = info.model || info.provider || '';
    const parts = [this.lastModel || 'a provider'];
    if (info.attempt && info.attempt > 1) parts.push(`attempt ${info.attempt}`);
    if (info.cacheHit) parts.push('from the cache');
    const adaptations = info.adaptations ?? [];
    parts.push(adaptations.length ? `adapted: ${adaptations.join('; ')}` : 'no adaptation');
    this.routes.push(parts.join(' · '));
    this.routedEl.textContent = `Routed to ${this.routes.join(' → then ')}`;
    this.routedEl.hidden = false;
  }

  appendText(text) {
    this.chunks.push(text);
    this.answerEl.append(document.createTextNode(text));
  }

  showToolCall(call) {
    const block = document.createElement('pre');
    block.className = 'tool-call';
    block.textContent = `tool call ${call.name}(${call.argumentsJson ?? ''})`;
    this.answerEl.append(block);
  }

  addMedia(chunk) {
    const type = chunk.mimeType || 'application/octet-stream';
    const parts = this.pendingMedia.get(type) ?? [];
    parts.push(base64Bytes(chunk.data));
    this.pendingMedia.set(type, parts);
    if (!chunk.last) return;
    this.pendingMedia.delete(type);
    const url = URL.createObjectURL(new Blob(parts, { type }));
    let element;
    if (type.startsWith('image/')) {
      element = document.createElement('img');
      element.alt = 'image in the answer';
      element.src = url;
    } else if (type.startsWith('audio/') || type.startsWith('video/')) {
      element = document.createElement(type.startsWith('audio/') ? 'audio' : 'video');
      element.controls = true;
      element.src = url;
    } else {
      element = document.createElement('a');
      element.textContent = `download (${type})`;
      element.download = 'answer';
      element.href = url;
    }
    this.mediaEl.append(element);
  }

  showUsage(usage) {
    const parts = [`${usage.inputTokens ?? 0} tokens in`, `${usage.outputTokens ?? 0} out`];
    if (Number(usage.imageTokens ?? 0)) parts.push(`${usage.imageTokens} image tokens`);
    if (usage.audioSeconds) parts.push(`${Number(usage.audioSeconds).toFixed(1)} s of audio`);
    parts.push(`cost ${cost(usage.costUsdMicros)}`);
    this.usageEl.textContent = parts.join(' · ');
    this.usageEl.hidden = false;
  }

  showFinish(finish) {
    this.note(`stopped: ${enumWords(finish.stopReason ?? 'STOP_UNSPECIFIED', 'STOP_')}`);
  }

  /** Appends a fact to the usage line (how it stopped, how many attempts). */
  note(text) {
    this.usageEl.textContent = `${this.usageEl.textContent}${this.usageEl.textContent ? ' · ' : ''}${text}`;
    this.usageEl.hidden = false;
  }

  done() {
    this.setState('done');
  }

  cancelled() {
    this.setState('cancelled');
    this.showError('Stopped', 'the request was cancelled; the text above is what arrived before.');
  }

  /** An RPC error (ConnectError: code and message) or any other failure, shown as an alert. */
  fail(error, what = 'The request failed') {
    this.setState('error');
    const code = error && error.code ? error.code : error?.name ?? 'error';
    const message = error && error.code ? error.rawMessage || error.message : error?.message ?? String(error);
    this.showError(`${what}: ${code}`, message);
  }

  showError(title, detail) {
    const strong = document.createElement('strong');
    strong.textContent = title;
    const text = document.createElement('span');
    text.textContent = ` ${detail}`;
    this.errorEl.replaceChildren(strong, text);
    this.errorEl.hidden = false;
  }
}
