/**
 * "Error to message", once: what a caught value says, for logs, reasons and status messages.
 * `firstLine` keeps only the first line (stack-like or multi-line messages from libraries), cut at
 * `max` characters.
 */
export function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

export function firstLine(e: unknown, max = 300): string {
  return errorMessage(e).split('\n')[0]!.slice(0, max);
}
