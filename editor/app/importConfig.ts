// Opening a training config people bring (ai-toolkit YAML/JSON, kohya_ss JSON, sd-scripts TOML) in the editor:
// the server turns it into a graph (POST /api/import) and the report of what carried over is kept for the panel.
import { ImportResponse, type ImportResponse as ImportAnswer } from '../../server/import/protocol';
import { authHeaders } from '../net/token';
import { createStore } from '../state/store';
export { isConfigFile } from '../graph/configFile';

/** The report of the last import, shown until closed. */
export const importReportStore = createStore<{ report: ImportAnswer['report'] } | null>(null);

export class ImportFailed extends Error {}

/** Imports a config; the answer's workflow is what the canvas loads. */
export async function importConfig(filename: string, text: string): Promise<ImportAnswer> {
  const res = await fetch('/api/import', { method: 'POST', headers: { ...authHeaders(), 'content-type': 'application/json' }, body: JSON.stringify({ filename, text }) });
  const body = (await res.json().catch(() => null)) as { error?: { message?: string } } | null;
  if (!res.ok) throw new ImportFailed(body?.error?.message ?? `${filename}: the server answered ${res.status}`);
  const parsed = ImportResponse.safeParse(body);
  if (!parsed.success) throw new ImportFailed(`${filename}: unexpected answer from /api/import (${parsed.error.issues[0]?.message})`);
  importReportStore.set(() => ({ report: parsed.data.report }));
  return parsed.data;
}
