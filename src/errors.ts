/**
 * Errors that cross a module boundary carry a stable machine code and a message a person can act on.
 * Codes are part of the public contract (WebSocket `error.code`, HTTP bodies, CLI exit output).
 */
export class MonologueError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'MonologueError';
    this.code = code;
  }
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
