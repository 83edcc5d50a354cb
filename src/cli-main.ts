import { MonologueError, errorMessage } from './errors.js';

/**
 * Run a command-line entry point and exit with its code. A failure prints one JSON line
 * (`{code, message}`) on stderr so scripts can read it, and exits 2 for a usage error, 1 otherwise.
 */
export function runCliMain(main: (argv: string[]) => Promise<number>): void {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err: unknown) => {
      const code = err instanceof MonologueError ? err.code : 'FAILED';
      process.stderr.write(JSON.stringify({ code, message: errorMessage(err) }) + '\n');
      process.exit(code === 'USAGE' ? 2 : 1);
    },
  );
}
