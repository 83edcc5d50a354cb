import { readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { openDatabase, type DatabaseHandle } from '../../src/db/database.js';
import type { Config } from '../../src/config/schema.js';
import { createLedger, type Ledger } from '../../src/payouts/ledger.js';
import { createSettler, type Settler, type SettleInput } from '../../src/payouts/settle.js';
import { createEarnings, type Earnings } from '../../src/payouts/earnings.js';
import type { TestDatabase } from '../helpers/db.js';

export type PayoutsConfig = Config['payouts'];

export function defaultPayouts(): PayoutsConfig {
  const all = JSON.parse(readFileSync(new URL('../../config/default.json', import.meta.url), 'utf8')) as { payouts: PayoutsConfig };
  return all.payouts;
}

const silentLog = { info: () => undefined, warn: () => undefined };

export interface Fixture {
  target: TestDatabase;
  handle: DatabaseHandle;
  ledger: Ledger;
  settler: Settler;
  earnings: Earnings;
  config: PayoutsConfig;
  user(enrolled?: boolean): Promise<string>;
  call(userId: string, counterpartHash?: string): Promise<string>;
  /** A settle input for a call answered at `answeredAt` lasting `seconds` with `talk` seconds of speech. */
  input(userId: string, callId: string, answeredAt: number, seconds: number, talk: number, more?: Partial<SettleInput>): SettleInput;
  close(): Promise<void>;
}

export async function openFixture(fresh: () => Promise<TestDatabase>, config: PayoutsConfig = defaultPayouts(), now?: () => number): Promise<Fixture> {
  const target = await fresh();
  const handle = await openDatabase(target.url);
  const ledger = createLedger(handle.db);
  const settler = createSettler({ db: handle.db, ledger, config, log: silentLog, ...(now ? { now } : {}) });
  const earnings = createEarnings(handle.db, now ? { now } : {});
  let n = 0;
  const id = (p: string) => `${p}_${randomBytes(8).toString('hex')}_${n++}`;
  const counterparts = new Map<string, string>();
  return {
    target,
    handle,
    ledger,
    settler,
    earnings,
    config,
    async user(enrolled = true) {
      const uid = id('usr');
      await handle.db
        .insertInto('users')
        .values({ id: uid, phone_hash: id('ph'), phone_cipher: 'x', enrolled: enrolled ? 1 : 0, created_at: 1, consent_version: null, consent_at: null })
        .execute();
      return uid;
    },
    async call(userId, counterpartHash = id('cp')) {
      const cid = id('call');
      await handle.db
        .insertInto('calls')
        .values({
          id: cid, user_id: userId, direction: 'outbound', counterpart_hash: counterpartHash, counterpart_cipher: 'x',
          sip_call_id: null, created_at: 1, ringing_at: null, answered_at: null, ended_at: null, end_reason: null,
          sip_status: null, recording_note: null, provider_duration_s: null, provider_call_id: null,
        })
        .execute();
      counterparts.set(cid, counterpartHash);
      return cid;
    },
    input(userId, callId, answeredAt, seconds, talk, more = {}) {
      return {
        callId,
        userId,
        answeredAt,
        endedAt: answeredAt + seconds * 1000,
        talkMs: talk * 1000,
        counterpartHash: counterparts.get(callId) ?? '',
        counterpartEnrolled: false,
        ...more,
      };
    },
    async close() {
      await handle.close();
      await target.drop();
    },
  };
}

export const T0 = Date.UTC(2025, 2, 14, 12, 0, 0);
