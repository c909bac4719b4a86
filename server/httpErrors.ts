// Errors that become HTTP answers: a 4xx carries its message to the client, anything else is logged with its stack
// and answered with a plain "internal server error" — no stack trace ever reaches a client.
import type { ErrorRequestHandler } from 'express';
import type { ErrorBody } from './protocol';

export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly type = 'bad_request',
    readonly extra: Partial<ErrorBody> = {},
  ) {
    super(message);
  }
}

export function errorHandler(log: (message: string, err: unknown) => void): ErrorRequestHandler {
  return (err, _req, res, _next) => {
    let status = 500;
    let body: ErrorBody = { error: { type: 'internal_error', message: 'internal server error' } };
    if (err instanceof HttpError) {
      status = err.status;
      body = { error: { type: err.type, message: err.message }, ...err.extra };
    } else if (err && typeof err === 'object' && typeof (err as { status?: unknown }).status === 'number') {
      // body-parser and friends: their 4xx errors have safe messages; we phrase the common ones ourselves.
      const e = err as { status: number; type?: string; message?: string };
      if (e.status >= 400 && e.status < 500) {
        status = e.status;
        const message =
          e.type === 'entity.parse.failed' ? 'the request body is not valid JSON'
          : e.type === 'entity.too.large' ? 'the request body is too large'
          : e.type === 'encoding.unsupported' || e.type === 'charset.unsupported' ? 'unsupported body encoding'
          : 'bad request';
        body = { error: { type: e.type ?? 'bad_request', message } };
      }
    }
    if (status >= 500) log('request failed:', err);
    if (res.headersSent) {
      res.end();
      return;
    }
    res.status(status).json(body);
  };
}
