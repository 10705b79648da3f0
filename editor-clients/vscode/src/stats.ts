/** A readable summary of `fimls/stats`, shown by "fimls: Show statistics". Pure. */

import { describeModel, ModelInfo } from './status';

type Obj = Record<string, unknown>;

/** The summary lines, then the whole answer as JSON. */
export function formatStats(stats: unknown, now: Date = new Date()): string {
  const s = obj(stats);
  const requests = obj(s.requests);
  const latency = obj(s.latencyMs);
  const accept = obj(s.acceptances);
  const cache = obj(s.cache);
  const actions = obj(s.actions);
  const index = obj(s.index);
  const model = describeModel(s.model as ModelInfo | null | undefined);
  const lines = [
    `fimls statistics (${now.toISOString()})`,
    '',
    `Server:       ${str(s.state)}${s.message ? ` (${str(s.message)})` : ''}`,
    `Model:        ${model || 'none loaded'}`,
    `Requests:     ${num(requests.total)} (suggestions ${num(requests.suggestion)}, empty ${num(requests.empty)}, ` +
      `cancelled ${num(requests.cancelled)}, errors ${num(requests.error)}, not ready ${num(requests.notReady)}, ` +
      `skipped ${num(requests.skipped)})`,
    `Latency:      p50 ${num(latency.p50)} ms, p95 ${num(latency.p95)} ms over ${num(latency.count)} answers`,
    `Accepted:     ${num(accept.total)} (whole ${num(accept.full)}, partly ${num(accept.partial)}), ${num(accept.chars)} characters`,
    `From memory:  ${num(cache.memoryExact)} same text, ${num(cache.memoryTyped)} typed as suggested; ` +
      `${num(cache.prefetched)} prefetched, ${num(cache.warmedUp)} warm-ups`,
    `Code actions: ${num(actions.ok)} done, ${num(actions.failed)} failed, ${num(actions.cancelled)} cancelled, ` +
      `${num(actions.stale)} stale`,
    `Index:        ${num(index.files)} files, ${num(index.definitions)} definitions` +
      (index.done === false ? ' (indexing)' : ''),
    '',
    'Everything the server reported (fimls/stats):',
    JSON.stringify(stats, null, 2),
    '',
  ];
  return lines.join('\n');
}

function obj(value: unknown): Obj {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Obj) : {};
}

function num(value: unknown): string {
  return typeof value === 'number' && Number.isFinite(value) ? String(value) : '–';
}

function str(value: unknown): string {
  return typeof value === 'string' && value ? value : 'unknown';
}
