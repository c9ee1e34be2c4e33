// The Server panel: readiness (/readyz) and what /metrics has counted since the server started,
// read from the Prometheus text: calls by method and status, tokens and cost by model.

/** Samples of a Prometheus text exposition: `{name, labels, value}`, comments skipped. */
export function parsePrometheus(text) {
  const samples = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (!match) continue;
    const labels = {};
    for (const [, name, value] of (match[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) {
      labels[name] = value.replace(/\\(.)/g, (_, c) => (c === 'n' ? '\n' : c));
    }
    samples.push({ name: match[1], labels, value: Number(match[3]) });
  }
  return samples;
}

function rows(tbody, data) {
  tbody.replaceChildren(...data.map((cells) => {
    const tr = document.createElement('tr');
    for (const text of cells) {
      const td = document.createElement('td');
      td.textContent = text;
      tr.append(td);
    }
    return tr;
  }));
}

/** Fills the panel; `elements` holds readiness (a paragraph) and the calls and usage tables. */
export async function refreshServer({ readiness, calls, usage }) {
  const [ready, metrics] = await Promise.all([fetch('/readyz'), fetch('/metrics')]);
  readiness.textContent = (await ready.text()).trim();
  readiness.classList.toggle('error', !ready.ok);
  const samples = parsePrometheus(await metrics.text());

  const handled = samples.filter((s) => s.name === 'grpc_server_handled_total');
  rows(calls.tBodies[0], handled
    .map((s) => [`${s.labels.grpc_service}/${s.labels.grpc_method}`, s.labels.grpc_code, String(s.value)])
    .sort((a, b) => a[0].localeCompare(b[0]) || a[1].localeCompare(b[1])));

  const byModel = new Map();
  const entry = (labels) => {
    // The model label is already `provider/model`; older servers may have said the model alone.
    const key = labels.model.includes('/') ? labels.model : `${labels.provider}/${labels.model}`;
    if (!byModel.has(key)) byModel.set(key, { input: 0, output: 0, cost: 0 });
    return byModel.get(key);
  };
  for (const s of samples) {
    if (s.name === 'prism_tokens_total') entry(s.labels)[s.labels.direction === 'output' ? 'output' : 'input'] += s.value;
    if (s.name === 'prism_cost_usd_total') entry(s.labels).cost += s.value;
  }
  rows(usage.tBodies[0], [...byModel.entries()].sort().map(([model, t]) =>
    [model, String(t.input), String(t.output), `$${t.cost.toFixed(6)}`]));
  usage.dataset.updated = String(Number(usage.dataset.updated ?? 0) + 1);
}
