// POST /api/import as both sides see it: the request (a config file's name and text) and the answer (the
// workflow and the key-by-key report), validated with zod in the server and in the editor.
import { z } from 'zod';
import { Workflow } from '../protocol';

export const ImportRequest = z.object({
  /** The file's name: its extension picks the syntax and messages name it. */
  filename: z.string().min(1).max(255),
  text: z.string().max(4 * 1024 * 1024),
});
export type ImportRequest = z.infer<typeof ImportRequest>;

export const ReportEntrySchema = z.object({
  key: z.string(),
  line: z.number().int().optional(),
  status: z.enum(['mapped', 'changed', 'unsupported', 'ignored']),
  value: z.unknown(),
  targets: z.array(z.string()),
  note: z.string().optional(),
});

export const ImportReportSchema = z.object({
  file: z.string(),
  format: z.string(),
  family: z.object({ id: z.string(), label: z.string(), trainable: z.boolean(), from: z.string() }),
  entries: z.array(ReportEntrySchema),
  notes: z.array(z.string()),
});

export const ImportResponse = z.object({ workflow: Workflow, report: ImportReportSchema, text: z.string() });
export type ImportResponse = z.infer<typeof ImportResponse>;
