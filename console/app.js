// The console's entry module: loads the capability matrix, sends the prompt and its attachments
// (or a microphone recording) to Generate (Connect server streaming, JSON), streams the answer
// into the page, stops it on request, reads the answer aloud through Synthesize, runs Extract
// on the same input, uploads to and asks a document index, and shows the server's readiness and counters.
import { serverStream, unary } from './connect.js';
import { Attachments } from './attachments.js';
import { AnswerView, base64Bytes } from './answer.js';
import { Conversation, describe } from './conversation.js';
import { fillMatrix, fillModelSelect } from './providers.js';
import { Recorder } from './recorder.js';
import { SAMPLE_SCHEMA, extract } from './extract.js';
import { ask, describeUpload, listDocuments, uploadDocument } from './indexes.js';
import { refreshServer } from './server.js';

const SERVICE = '/prism.v1.Prism';
// The API key lives for the tab only (sessionStorage), never in a cookie or on disk.
const KEY_STORAGE = 'prism.apiKey';

const $ = (id) => document.getElementById(id);
const form = $('ask');
const prompt = $('prompt');
const modelSelect = $('model');
const modelStatus = $('model-status');
const sendButton = $('send');
const stopButton = $('stop');
const speakButton = $('speak');
const speech = $('speech');
const keyInput = $('api-key');
const question = $('question');

const view = new AnswerView({ answer: $('answer'), routed: $('routed'), usage: $('usage'), error: $('error'), media: $('media') });
const attachments = new Attachments({ input: $('file'), dropZone: $('drop'), list: $('attachments') });
const conversation = new Conversation($('transcript'));
// The last finished turn, shown in the answer panel: it joins the transcript when the next starts.
let lastTurn = null;
const newChatButton = $('new-chat');
let running = null;  // the AbortController of the call in flight
// A recording is attached like any file; with no prompt yet, the prompt asks for its words.
new Recorder({
  button: $('record'),
  status: $('record-status'),
  onRecording: (file) => {
    attachments.add([file]);
    if (!prompt.value.trim()) prompt.value = 'Transcribe this recording.';
  },
});

keyInput.value = sessionStorage.getItem(KEY_STORAGE) ?? '';
keyInput.addEventListener('change', () => {
  sessionStorage.setItem(KEY_STORAGE, keyInput.value.trim());
  loadProviders();
});
const apiKey = () => keyInput.value.trim();

async function loadProviders() {
  modelStatus.textContent = 'loading providers…';
  modelStatus.classList.remove('error');
  try {
    const reply = await unary(`${SERVICE}/ListProviders`, {}, { apiKey: apiKey() });
    const providers = reply.providers ?? [];
    const count = fillModelSelect(modelSelect, providers);
    fillMatrix($('matrix').tBodies[0], providers);
    modelStatus.textContent = `${count} models from ${providers.length} providers`;
    modelSelect.dataset.loaded = 'true';
  } catch (error) {
    modelStatus.textContent = `could not list the providers: ${error.message}`;
    modelStatus.classList.add('error');
  }
}

function setRunning(controller) {
  running = controller;
  sendButton.disabled = Boolean(controller);
  stopButton.disabled = !controller;
  speakButton.disabled = Boolean(controller) || !view.text;
  newChatButton.disabled = Boolean(controller) || (conversation.isEmpty && !lastTurn);
}

async function send() {
  if (running) return;
  const text = prompt.value.trim();
  if (!text && !attachments.files.length) {
    view.showError('Nothing to send', 'type a prompt or attach a file first.');
    prompt.focus();
    return;
  }
  if (lastTurn) conversation.add(...lastTurn);
  lastTurn = null;
  const controller = new AbortController();
  setRunning(controller);
  view.start();
  try {
    const parts = (text ? [{ text }] : []).concat(await attachments.parts());
    const message = { role: 'ROLE_USER', parts };
    question.textContent = `You: ${describe(message)}`;
    question.hidden = false;
    const request = { messages: conversation.with(message) };
    if (modelSelect.value) request.route = { model: modelSelect.value };
    for await (const event of serverStream(`${SERVICE}/Generate`, request, { apiKey: apiKey(), signal: controller.signal })) {
      view.event(event);
    }
    view.done();
    // The turn is kept and the input cleared for the next one; a failed turn stays to be retried.
    // An answer without text (tool calls, media) is not sent back: a text part cannot be empty.
    lastTurn = view.text ? [message, view.text, view.model] : null;
    prompt.value = '';
    attachments.clear();
  } catch (error) {
    if (error.name === 'AbortError') view.cancelled();
    else view.fail(error);
  } finally {
    setRunning(null);
    showServer();
  }
}

/** Reads the answer aloud: Synthesize (server streaming) as WAV, played when the last chunk is in. */
async function speak() {
  if (running || !view.text) return;
  const controller = new AbortController();
  setRunning(controller);
  const chunks = [];
  let type = 'audio/wav';
  try {
    const request = { text: view.text, format: 'wav' };
    for await (const event of serverStream(`${SERVICE}/Synthesize`, request, { apiKey: apiKey(), signal: controller.signal })) {
      if (event.audio) {
        type = event.audio.mimeType || type;
        chunks.push(base64Bytes(event.audio.data));
      }
    }
    speech.src = URL.createObjectURL(new Blob(chunks, { type }));
    speech.hidden = false;
    await speech.play().catch(() => { /* autoplay refused: the controls are there */ });
  } catch (error) {
    if (error.name !== 'AbortError') view.fail(error, 'Could not read the answer aloud');
  } finally {
    setRunning(null);
  }
}

form.addEventListener('submit', (event) => {
  event.preventDefault();
  send();
});
prompt.addEventListener('keydown', (event) => {
  if (event.key === 'Enter' && (event.ctrlKey || event.metaKey)) {
    event.preventDefault();
    form.requestSubmit();
  }
});
stopButton.addEventListener('click', () => running?.abort());
newChatButton.addEventListener('click', () => {
  conversation.clear();
  lastTurn = null;
  view.reset();
  question.hidden = true;
  setRunning(null);
  prompt.focus();
});
speakButton.addEventListener('click', speak);

const extractView = new AnswerView({
  answer: $('extract-json'), routed: $('extract-routed'), usage: $('extract-usage'), error: $('extract-error'), media: $('extract-media'),
});
$('schema').value = SAMPLE_SCHEMA;
$('extract-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  const button = $('extract-run');
  button.disabled = true;
  try {
    const text = prompt.value.trim();
    const input = (text ? [{ text }] : []).concat(await attachments.parts());
    await extract({
      input, schemaText: $('schema').value, instructions: $('instructions').value.trim(),
      model: modelSelect.value, apiKey: apiKey(), view: extractView,
    });
  } finally {
    button.disabled = false;
    showServer();
  }
});

// The Index panel: upload, the index's documents, and questions (with the chat's model choice).
const indexView = new AnswerView({
  answer: $('index-answer'), routed: $('index-routed'), usage: $('index-usage'), error: $('index-error'), media: $('index-media'),
});
const indexName = () => $('index-name').value.trim();
function showDocuments() {
  listDocuments({ index: indexName(), apiKey: apiKey(), tbody: $('index-documents').tBodies[0] })
    .catch((error) => { $('index-status').textContent = `could not list the documents: ${error.message}`; });
}
$('index-name').addEventListener('change', showDocuments);
$('index-upload-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  const file = $('index-file').files[0];
  const button = $('index-upload');
  const status = $('index-status');
  const failure = $('index-upload-error');
  if (!file || !indexName()) return;
  button.disabled = true;
  failure.hidden = true;
  status.textContent = `uploading and indexing ${file.name}…`;
  status.dataset.state = 'uploading';
  try {
    const reply = await uploadDocument({ index: indexName(), file, apiKey: apiKey() });
    status.textContent = describeUpload(file, reply);
    status.dataset.state = 'done';
    $('index-file').value = '';
  } catch (error) {
    status.textContent = '';
    status.dataset.state = 'error';
    failure.textContent = `Indexing ${file.name} failed: ${error.message}`;
    failure.hidden = false;
  } finally {
    button.disabled = false;
    showDocuments();
  }
});
$('index-ask-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  const button = $('index-ask');
  button.disabled = true;
  try {
    await ask({
      index: indexName(), question: $('index-question').value.trim(), retrieveOnly: $('index-retrieve-only').checked,
      model: modelSelect.value, apiKey: apiKey(), view: indexView, hitsList: $('index-hits'),
    });
  } finally {
    button.disabled = false;
    showServer();
  }
});
showDocuments();

/** The Server panel, refreshed at load, after every answer and on request. */
function showServer() {
  refreshServer({ readiness: $('readiness'), calls: $('calls-table'), usage: $('usage-table') })
    .catch((error) => { $('readiness').textContent = `could not read the server's state: ${error.message}`; });
}
$('refresh-server').addEventListener('click', showServer);

loadProviders();
showServer();
