// The process-level last resort. Every request, socket event and job already answers its own
// errors, so an error that reaches this point is a bug: it is logged with its stack under a
// fixed prefix (the hostile-input tests look for it) and the server keeps serving, because job
// state is written at every change and one failed callback leaves the rest of the process sound.
export const LAST_RESORT_PREFIX = 'BUG (caught by the last resort, the server keeps running):';

export function installLastResort(log: (line: string) => void = console.error): void {
  const report = (what: string) => (err: unknown) => log(`${LAST_RESORT_PREFIX} ${what}: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
  process.on('uncaughtException', report('uncaught exception'));
  process.on('unhandledRejection', report('unhandled promise rejection'));
}
