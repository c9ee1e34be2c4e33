// The chat so far: every finished turn (the user's message and the answer's text) is kept and
// sent again before the next prompt, as Generate takes a conversation in `messages`; the
// transcript shows the earlier turns. A failed or stopped turn is not kept.

/** A user message as read back: its text, and the names of its files in brackets. */
export function describe(message) {
  const files = message.parts.filter((p) => p.media).map((p) => p.media.name || p.media.mimeType);
  const text = message.parts.filter((p) => p.text).map((p) => p.text).join(' ');
  return files.length ? `${text} [${files.join(', ')}]` : text;
}

export class Conversation {
  constructor(list) {
    this.list = list;
    this.messages = [];
  }

  get isEmpty() {
    return this.messages.length === 0;
  }

  /** The request's messages: the turns so far, then the new user message. */
  with(userMessage) {
    return [...this.messages, userMessage];
  }

  /** Keeps a finished turn; `label` says who answered (the routed model). */
  add(userMessage, answerText, label) {
    this.messages.push(userMessage, { role: 'ROLE_ASSISTANT', parts: [{ text: answerText }] });
    this.list.append(
      this.item('You', describe(userMessage), 'user'),
      this.item(label || 'Answer', answerText, 'assistant'),
    );
  }

  item(who, text, role) {
    const li = document.createElement('li');
    li.className = role;
    const name = document.createElement('strong');
    name.textContent = `${who}: `;
    const body = document.createElement('span');
    body.textContent = text;
    li.append(name, body);
    return li;
  }

  clear() {
    this.messages = [];
    this.list.replaceChildren();
  }
}
