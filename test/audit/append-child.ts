/**
 * A second process appending to the audit chain of a SQLite file (chain.test.ts): appends as `actor`
 * until told `stop` on stdin, says `ready` after its first append and `done N` when it stops.
 */
import { openDatabase } from '../../src/db/database.js';
import { createAuditLog } from '../../src/audit/audit-log.js';

const [file, actor] = process.argv.slice(2);
if (!file || !actor) throw new Error('usage: append-child.ts DB_FILE ACTOR');
const handle = await openDatabase(file);
const audit = createAuditLog(handle.db);
let stop = false;
process.stdin.on('data', (d: Buffer) => {
  if (d.toString().includes('stop')) stop = true;
});
let n = 0;
while (!stop) {
  await audit.append({ actor, action: 'recording.verify', detail: `child ${n}` });
  if (++n === 1) process.stdout.write('ready\n');
  // A macrotask turn, so that stdin's `stop` is seen.
  await new Promise((r) => setImmediate(r));
}
await handle.close();
process.stdout.write(`done ${n}\n`);
