// POST /api/import: a config file people bring (ai-toolkit, kohya_ss, sd-scripts) → the equivalent graph and
// the report of what carried over, for the editor's Open… and drop. Bad files answer 400 naming file, line and key.
import { Router } from 'express';
import type { NodeRegistry } from '../../nodes/registry';
import { HttpError } from '../httpErrors';
import { importConfigText } from '../import/index';
import { ImportRequest, type ImportResponse } from '../import/protocol';
import { formatReport } from '../import/report';
import { ConfigImportError } from '../import/source';
import type { ProjectPaths } from '../paths';

export function importRoutes(deps: { registry: NodeRegistry; paths: ProjectPaths }): Router {
  const r = Router();
  r.post('/import', async (req, res) => {
    const body = ImportRequest.safeParse(req.body);
    if (!body.success) throw new HttpError(400, `import: ${body.error.issues[0]!.path.join('.') || 'body'}: ${body.error.issues[0]!.message}`);
    try {
      // The file has no folder on the server: a dataset_config or prompt file it names is reported as not found.
      // ${VAR} is not filled from the server's environment (that would hand out its secrets): unset → an error.
      const result = await importConfigText(body.data.filename, body.data.text, deps.registry, { paths: deps.paths, dir: '/nonexistent', env: {} });
      const answer: ImportResponse = { workflow: result.workflow, report: result.report, text: formatReport(result.report) };
      res.json(answer);
    } catch (err) {
      if (err instanceof ConfigImportError) throw new HttpError(400, err.message, 'bad_config');
      throw err;
    }
  });
  return r;
}
