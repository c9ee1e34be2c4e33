// The Extract panel: the prompt and attachments of the chat as input, a JSON Schema edited here,
// and Extract's answer (Connect unary, JSON): the validated JSON, what was routed, usage and cost,
// and how many generations it took. Results and errors render through an AnswerView of its own.
import { unary } from './connect.js';

// What the schema editor starts with: an invoice, as the README's example.
export const SAMPLE_SCHEMA = JSON.stringify({
  type: 'object',
  required: ['invoice_number', 'total'],
  additionalProperties: false,
  properties: { invoice_number: { type: 'string' }, total: { type: 'number', minimum: 0 } },
}, null, 2);

/**
 * Runs one extraction. `input` is the Part list (text and media), `view` an AnswerView over the
 * panel's elements; a schema that is not JSON is refused here, before any call.
 */
export async function extract({ input, schemaText, instructions, model, apiKey, view }) {
  view.start();
  try {
    JSON.parse(schemaText);
  } catch (error) {
    view.fail({ code: 'invalid_argument', rawMessage: `the schema is not JSON: ${error.message}` }, 'Not sent');
    return;
  }
  const request = { input, schemaJson: schemaText };
  if (instructions) request.instructions = instructions;
  if (model) request.route = { model };
  try {
    const reply = await unary('/prism.v1.Prism/Extract', request, { apiKey });
    if (reply.routed) view.showRouted(reply.routed);
    let pretty = reply.json ?? '';
    try {
      pretty = JSON.stringify(JSON.parse(pretty), null, 2);
    } catch { /* shown as it came */ }
    view.appendText(pretty);
    if (reply.usage) view.showUsage(reply.usage);
    const attempts = Number(reply.attempts ?? 1);
    view.note(`${attempts} ${attempts === 1 ? 'generation' : 'generations'}`);
    view.done();
  } catch (error) {
    view.fail(error, 'Extract failed');
  }
}
