// The capability matrix (ListProviders): the model picker, grouped by provider, and the table of
// every provider's models with what they take, produce and cost, and their limits.

import { formatBytes } from './attachments.js';

/** `MODALITY_IMAGE` → `image`: enum names without their prefix, for reading. */
function short(values, prefix) {
  return (values ?? []).map((v) => String(v).replace(prefix, '').toLowerCase().replaceAll('_', ' '));
}

/** Micro-dollars per million tokens (a JSON string: uint64) as dollars. */
function dollars(micros) {
  const n = Number(micros ?? 0);
  return n ? `$${(n / 1e6).toFixed(2)}` : '—';
}

/** The limits a model declares, in a line: images, PDFs, audio, the whole request; unset ones left out. */
export function limitsText(limits = {}) {
  const n = (v) => Number(v ?? 0);
  const out = [];
  const image = [];
  if (n(limits.maxImages)) image.push(`≤ ${n(limits.maxImages)}`);
  if (n(limits.maxImageBytes)) image.push(formatBytes(n(limits.maxImageBytes)));
  if (n(limits.maxImageLongEdge)) image.push(`${n(limits.maxImageLongEdge)} px`);
  if (image.length) out.push(`images ${image.join(', ')}`);
  const pdf = [];
  if (n(limits.maxPdfPages)) pdf.push(`${n(limits.maxPdfPages)} pages`);
  if (n(limits.maxPdfBytes)) pdf.push(formatBytes(n(limits.maxPdfBytes)));
  if (pdf.length) out.push(`PDF ${pdf.join(', ')}`);
  const audio = [];
  if (n(limits.maxAudioSeconds)) audio.push(`${n(limits.maxAudioSeconds)} s`);
  if (n(limits.maxAudioBytes)) audio.push(formatBytes(n(limits.maxAudioBytes)));
  if (audio.length) out.push(`audio ${audio.join(', ')}`);
  if (n(limits.maxRequestBytes)) out.push(`request ${formatBytes(n(limits.maxRequestBytes))}`);
  return out.join('; ') || '—';
}

function cell(row, text, className) {
  const td = document.createElement('td');
  td.textContent = text;
  if (className) td.className = className;
  row.append(td);
  return td;
}

/** Fills the model select with every generate-capable model of every loaded provider. */
export function fillModelSelect(select, providers) {
  const keep = select.value;
  const first = select.options[0];  // "any capable model"
  const groups = [];
  for (const provider of providers) {
    const models = (provider.models ?? []).filter((m) => (m.operations ?? []).includes('OPERATION_GENERATE'));
    if (!models.length) continue;
    const group = document.createElement('optgroup');
    group.label = provider.state === 'PROVIDER_STATE_LOADED' || !provider.state
      ? provider.name : `${provider.name} (${short([provider.state], 'PROVIDER_STATE_')[0]})`;
    for (const model of models) {
      const option = document.createElement('option');
      option.value = model.id;
      option.textContent = `${model.id}  —  ${short(model.inputs, 'MODALITY_').join(', ')}`;
      group.append(option);
    }
    groups.push(group);
  }
  select.replaceChildren(first, ...groups);
  if ([...select.options].some((o) => o.value === keep)) select.value = keep;
  return groups.reduce((n, g) => n + g.children.length, 0);
}

/** Renders the matrix table's body: one row per model, a failed provider as one row saying why. */
export function fillMatrix(tbody, providers) {
  const rows = [];
  for (const provider of providers) {
    const state = short([provider.state ?? 'PROVIDER_STATE_UNSPECIFIED'], 'PROVIDER_STATE_')[0];
    const name = `${provider.name} ${provider.version ?? ''}`.trim();
    if (!(provider.models ?? []).length) {
      const row = document.createElement('tr');
      cell(row, name);
      const why = cell(row, `${state}${provider.stateReason ? `: ${provider.stateReason}` : ''}`, 'muted');
      why.colSpan = 7;
      rows.push(row);
      continue;
    }
    for (const model of provider.models) {
      const row = document.createElement('tr');
      cell(row, state === 'loaded' ? name : `${name} (${state})`);
      cell(row, model.id, 'mono');
      cell(row, short(model.operations, 'OPERATION_').join(', '));
      cell(row, short(model.inputs, 'MODALITY_').join(', '));
      cell(row, short(model.outputs, 'MODALITY_').join(', '));
      const features = Object.entries(model.features ?? {}).filter(([, on]) => on).map(([k]) => k);
      cell(row, features.join(', '));
      const pricing = model.pricing ?? {};
      cell(row, `${dollars(pricing.inputUsdMicrosPerMillionTokens)} · ${dollars(pricing.outputUsdMicrosPerMillionTokens)}`);
      cell(row, limitsText(model.limits));
      rows.push(row);
    }
  }
  tbody.replaceChildren(...rows);
}
