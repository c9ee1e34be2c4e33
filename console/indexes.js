// The Index panel: uploads a document into a named index (IndexDocument, client streaming over
// Connect: the header and the file's chunks as envelopes in one body), lists the index's documents
// (ListDocuments), and asks it (Query, server streaming): the hits it retrieved, and with a model
// the answer streamed into an AnswerView, citing pages.
import { clientStream, serverStream, unary } from './connect.js';
import { formatBytes, readBase64 } from './attachments.js';

const SERVICE = '/prism.v1.Prism';
// Bytes per data message: well under the server's message limit (64 MiB by default) once in
// base64, and small enough that one chunk's base64 string is cheap to build.
const CHUNK_BYTES = 1024 * 1024;

/** Types the server cannot sniff from the bytes alone: text by the file's extension. */
function declaredType(file) {
  if (/\.(md|markdown)$/i.test(file.name)) return 'text/markdown';
  if (/\.(txt|text)$/i.test(file.name)) return 'text/plain';
  return file.type || '';
}

/** Uploads `file` into `index`; resolves to the IndexDocumentResponse (documentId, pages, chunks, notes). */
export async function uploadDocument({ index, file, title, apiKey }) {
  const header = { index, mimeType: declaredType(file), title: title || file.name.replace(/\.[^.]*$/, '') };
  const requests = [{ header }];
  for (let offset = 0; offset < file.size; offset += CHUNK_BYTES) {
    requests.push({ data: await readBase64(file.slice(offset, offset + CHUNK_BYTES)) });
  }
  return clientStream(`${SERVICE}/IndexDocument`, requests, { apiKey });
}

/** One line for an upload's result: the id the server gave, what it made, and its notes. */
export function describeUpload(file, reply) {
  const counts = [`${reply.pages ?? 0} pages`, `${reply.chunks ?? 0} chunks`, `${reply.images ?? 0} images`];
  const notes = (reply.notes ?? []).map((note) => ` Note: ${note}.`).join('');
  return `${file.name} (${formatBytes(file.size)}) indexed as ${reply.documentId}: ${counts.join(', ')}.${notes}`;
}

/** Fills `tbody` with the documents of `index` (ListDocuments); an unknown index is an empty list. */
export async function listDocuments({ index, apiKey, tbody }) {
  let documents = [];
  try {
    // No name yet (the field is being typed in): nothing to list, not an error.
    if (index) documents = (await unary(`${SERVICE}/ListDocuments`, { index }, { apiKey })).documents ?? [];
  } catch (error) {
    if (error.code !== 'not_found') throw error;
  }
  tbody.replaceChildren(...documents.map((d) => {
    const row = document.createElement('tr');
    for (const text of [d.documentId, d.title ?? '', d.mimeType ?? '', String(d.pages ?? 0), String(d.chunks ?? 0),
      formatBytes(Number(d.storedBytes ?? 0))]) {
      const cell = document.createElement('td');
      cell.textContent = text;
      row.append(cell);
    }
    return row;
  }));
  return documents.length;
}

/** The hits as a list: each chunk or page with its document, page, score and a slice of its text. */
function renderHits(list, hits) {
  const items = [...(hits.text ?? []).map((h) => ['chunk', h]), ...(hits.pages ?? []).map((h) => ['page', h])];
  list.replaceChildren(...items.map(([kind, h]) => {
    const item = document.createElement('li');
    const label = document.createElement('strong');
    label.textContent = `[${h.documentId}${h.page ? ` p.${h.page}` : ''}] ${kind}, score ${Number(h.score ?? 0).toFixed(2)}`;
    const text = (h.text ?? '').replace(/\s+/g, ' ');
    item.append(label, document.createTextNode(` ${h.heading ? `${h.heading}: ` : ''}${text.slice(0, 300)}${text.length > 300 ? '…' : ''}`));
    return item;
  }));
  list.hidden = items.length === 0;
}

/** Asks `index`: with `retrieveOnly` the hits alone, else the answer of `model` (or any capable one). */
export async function ask({ index, question, retrieveOnly, model, apiKey, view, hitsList, signal }) {
  view.start();
  hitsList.replaceChildren();
  hitsList.hidden = true;
  const request = { index, question, retrieveOnly };
  if (model) request.route = { model };
  try {
    for await (const event of serverStream(`${SERVICE}/Query`, request, { apiKey, signal })) {
      if (event.hits) renderHits(hitsList, event.hits);
      else view.event(event);
    }
    if (retrieveOnly && hitsList.hidden) view.appendText('Nothing in the index matches the question.');
    view.done();
  } catch (error) {
    if (error.name === 'AbortError') view.cancelled();
    else view.fail(error, 'The question failed');
  }
}
