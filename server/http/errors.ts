// How the HTTP API answers what went wrong: client mistakes are a 4xx with one plain sentence,
// a full disk is the server's 507, anything else a 500 that names the error but no path or stack.
import type { NextFunction, Request, Response } from 'express';
import multer from 'multer';
import { DiskFullError, isNoSpace } from '../../media/disk-full.js';
import { QueueFullError, StorageFullError } from '../jobs/job-service.js';

export const MAX_UPLOAD_BYTES = 20 * 1024 * 1024;

/** A refusal with its HTTP status; the message is shown to the user as it is. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export function notFound(_req: Request, _res: Response, next: NextFunction) {
  next(new HttpError(404, 'no such API endpoint'));
}

export function errorHandler(err: unknown, _req: Request, res: Response, _next: NextFunction) {
  if (err instanceof HttpError) return void res.status(err.status).json({ error: err.message });
  if (err instanceof QueueFullError) return void res.status(503).json({ error: err.message });
  if (err instanceof StorageFullError) return void res.status(507).json({ error: err.message });
  if (err instanceof DiskFullError) return void res.status(507).json({ error: err.onServer().message });
  if (isNoSpace(err)) return void res.status(507).json({ error: new DiskFullError('the upload', 'server').message });
  if (err instanceof multer.MulterError) {
    const msg = err.code === 'LIMIT_FILE_SIZE' ? `the image is larger than ${MAX_UPLOAD_BYTES / 2 ** 20} MB; send a smaller file` : `bad upload: ${err.message}`;
    return void res.status(err.code === 'LIMIT_FILE_SIZE' ? 413 : 400).json({ error: msg });
  }
  const e = err as Error & { status?: number; type?: string; limit?: number; length?: number };
  if (e.status && e.status >= 400 && e.status < 500) return void res.status(e.status).json({ error: bodyParserMessage(e) ?? e.message });
  console.error('request failed:', e);
  res.status(500).json({ error: `internal error: ${e.message}` });
}

/** express.json's refusals in the user's words (its own speak of the parser: "request entity too large", "incorrect header check"). */
function bodyParserMessage(e: Error & { type?: string; limit?: number; length?: number; code?: string }): string | undefined {
  switch (e.type) {
    case 'entity.parse.failed':
      return `the body is not valid JSON (${e.message}); send a JSON object like {"settings": {...}}`;
    case 'entity.too.large':
      return `the body is ${e.length ? `${Math.ceil(e.length / 1024)} kB` : 'too large'}, over the ${Math.floor((e.limit ?? 0) / 1024)} kB a JSON request may be; send only the settings`;
    case 'charset.unsupported':
      return `${e.message}; send the JSON as UTF-8`;
    case 'encoding.unsupported':
      return `${e.message}; send the body uncompressed, or with gzip or deflate`;
  }
  if (e.code?.startsWith('Z_')) return `the body could not be decompressed as its Content-Encoding says (${e.message}); send it uncompressed`;
  return undefined;
}
