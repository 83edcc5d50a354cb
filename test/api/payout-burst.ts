/**
 * A second process requesting withdrawals on the same database as a running service, to race the
 * service's own requests (what serialises them must hold across processes, not only inside one).
 * argv: USER_ID COUNT AMOUNT_MICROS KEY_PREFIX. Prints `ready`, waits for a line on stdin, fires COUNT
 * requests at once, prints a JSON array of outcomes (`created` or an error code) and exits.
 */
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { loadConfig } from '../../src/config/load.js';
import { openStore } from '../../src/service.js';
import { createAuditLog } from '../../src/audit/audit-log.js';
import { createWithdrawals } from '../../src/payouts/withdrawals.js';

const [userId = '', count = '0', amount = '0', prefix = 'burst'] = process.argv.slice(2);
const config = loadConfig({});
const store = await openStore(config);
const withdrawals = createWithdrawals({ db: store.db.db, audit: createAuditLog(store.db.db), minimumPayoutMicros: config.payouts.minimumPayoutMicros });
const input = createInterface({ input: process.stdin });
process.stdout.write('ready\n');
await once(input, 'line');
const outcomes = await Promise.all(
  Array.from({ length: Number(count) }, (_, i) =>
    withdrawals.request(userId, `${prefix}-${i}`, Number(amount)).then(
      (r) => (r.created ? 'created' : 'replayed'),
      (err: { code?: string }) => err.code ?? String(err),
    ),
  ),
);
process.stdout.write(JSON.stringify(outcomes) + '\n');
input.close();
await store.db.close();
