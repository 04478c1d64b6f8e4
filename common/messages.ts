// One way to turn a zod error into plain sentences. Schemas in common/ word their messages
// without a subject ("must be 1–128") and may name other fields as {key}; the reader's name for
// each field goes in front: a label on the page ("Frames"), a flag in the CLI ("--frames"), the
// JSON key in the API ("frames"). A field inside an object is named by its path ("framing.x").
import type { z } from 'zod';

export type NameOf = (key: string) => string;

const asKey: NameOf = (key) => key || 'settings';

/** The field an issue is about: its path of names, without list positions ("formats", "framing.x"). */
function fieldOf(path: readonly PropertyKey[]): string {
  const names: string[] = [];
  for (const p of path) {
    if (typeof p !== 'string') break;
    names.push(p);
  }
  return names.join('.');
}

/** The first message for each field, as a sentence that names the field. */
export function fieldMessages(error: z.ZodError, nameOf: NameOf = asKey): Record<string, string> {
  const out: Record<string, string> = {};
  for (const issue of error.issues) {
    const key = fieldOf(issue.path);
    if (key in out) continue;
    const text = issue.message.replace(/\{(\w+)\}/g, (_, k: string) => nameOf(k));
    out[key] = /^(must|needs)\b/.test(text) ? `${nameOf(key)} ${text}` : `${nameOf(key)}: ${text}`;
  }
  return out;
}

/** All of them on one line, for the CLI and the API. */
export function formatError(error: z.ZodError, nameOf: NameOf = asKey): string {
  return Object.values(fieldMessages(error, nameOf)).join('; ');
}
