import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { createInterface } from 'node:readline';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Kysely, PostgresDialect, SqliteDialect, sql } from 'kysely';
import SQLite from 'better-sqlite3';
import pg from 'pg';
import { createMigrator, openDatabase, type Db } from '../../src/db/database.js';
import type { Tables } from '../../src/db/tables.js';
import { createAuditLog, type AuditLog } from '../../src/audit/audit-log.js';
import { chainHash, GENESIS_HASH } from '../../src/audit/chain-hash.js';
import { databaseKinds, freshPostgres, freshSqlite, type TestDatabase } from '../helpers/db.js';
import { until } from '../helpers/until.js';

/** The chain as stored, checked link by link here (not by verify()): seq dense from 1, each prev the last hash. */
async function assertDenseChain(db: Db, count: number): Promise<Array<{ seq: number; actor: string }>> {
  const rows = await db.selectFrom('audit_log').selectAll().orderBy('seq').execute();
  assert.equal(rows.length, count);
  let prev = GENESIS_HASH;
  for (const [i, r] of rows.entries()) {
    assert.equal(Number(r.seq), i + 1, 'seq is dense');
    assert.equal(r.prev_hash, prev, `entry ${r.seq} links to the one before`);
    assert.equal(chainHash(prev, { seq: Number(r.seq), at: Number(r.at), actor: r.actor, action: r.action, userId: r.user_id, recordingId: r.recording_id, detail: r.detail }), r.hash);
    prev = r.hash;
  }
  const head = await db.selectFrom('audit_head').selectAll().executeTakeFirstOrThrow();
  assert.deepEqual([Number(head.seq), head.hash], [count, prev], 'the head is the last link');
  return rows.map((r) => ({ seq: Number(r.seq), actor: r.actor }));
}

async function withDatabase(fresh: () => Promise<TestDatabase>, fn: (db: Db, target: TestDatabase) => Promise<void>): Promise<void> {
  const target = await fresh();
  try {
    const handle = await openDatabase(target.url);
    try {
      await fn(handle.db, target);
    } finally {
      await handle.close();
    }
  } finally {
    await target.drop();
  }
}

async function appendMany(audit: AuditLog, n: number, actor: string): Promise<void> {
  await Promise.all(Array.from({ length: n }, (_, i) => audit.append({ actor, action: 'recording.read', userId: 'usr_x', recordingId: `rec_${i}`, detail: `${actor} ${i}` })));
}

test('PostgreSQL: 200 appends at once from 4 pools (20 connections) keep the chain valid and seq dense', async (t) => {
  await withDatabase(freshPostgres, async (db, target) => {
    const pools = Array.from({ length: 4 }, () => new pg.Pool({ connectionString: target.url, max: 5 }));
    const dbs = pools.map((pool) => new Kysely<Tables>({ dialect: new PostgresDialect({ pool }) }));
    try {
      const started = performance.now();
      await Promise.all(dbs.map((d, i) => appendMany(createAuditLog(d), 50, `system:pool${i}`)));
      t.diagnostic(`200 concurrent appends on PostgreSQL: ${Math.round(performance.now() - started)} ms`);
    } finally {
      await Promise.all(dbs.map((d) => d.destroy()));
    }
    assert.deepEqual(await createAuditLog(db).verify(), { ok: true, entries: 200 });
    const rows = await assertDenseChain(db, 200);
    for (let i = 0; i < 4; i++) assert.equal(rows.filter((r) => r.actor === `system:pool${i}`).length, 50);
  });
});

test('SQLite: appends from this process (10 at once, in waves) and from a second process at the same time keep the chain valid and seq dense', async (t) => {
  await withDatabase(freshSqlite, async (db, target) => {
    const audit = createAuditLog(db);
    const child = spawn(process.execPath, ['--import', 'tsx', 'test/audit/append-child.ts', target.url, 'system:child'], { stdio: ['pipe', 'pipe', 'inherit'] });
    const lines = createInterface({ input: child.stdout });
    const said: string[] = [];
    lines.on('line', (l) => said.push(l));
    const exited = new Promise<number | null>((r) => child.once('exit', r));
    try {
      await until('the child process appended', () => said.includes('ready'));
      const childCount = async () => Number((await db.selectFrom('audit_log').select((e) => e.fn.countAll().as('n')).where('actor', '=', 'system:child').executeTakeFirstOrThrow()).n);
      for (let wave = 0; wave < 10; wave++) {
        // The child appended since the last wave: the two processes' entries really interleave.
        const before = await childCount();
        await until('the child appended again', async () => (await childCount()) > before);
        await appendMany(audit, 10, 'system:parent');
      }
    } finally {
      child.stdin.end('stop\n');
    }
    assert.equal(await exited, 0);
    const childAppended = Number(/^done (\d+)$/.exec(said.find((l) => l.startsWith('done')) ?? '')?.[1]);
    assert.ok(childAppended >= 10, `the child appended ${childAppended} times`);
    t.diagnostic(`SQLite: 100 appends here and ${childAppended} by the second process meanwhile`);
    assert.deepEqual(await audit.verify(), { ok: true, entries: 100 + childAppended });
    const rows = await assertDenseChain(db, 100 + childAppended);
    const parentSeqs = rows.filter((r) => r.actor === 'system:parent').map((r) => r.seq);
    const between = rows.filter((r) => r.actor === 'system:child' && r.seq > parentSeqs[0]! && r.seq < parentSeqs.at(-1)!);
    assert.ok(between.length >= 9, 'child entries sit between the parent’s');
  });
});

for (const [kind, fresh] of databaseKinds) {
  test(`${kind}: editing one entry's detail, actor or time breaks the chain at that entry; deleting a middle entry or the last one is found`, async () => {
    await withDatabase(fresh, async (db) => {
      const audit = createAuditLog(db);
      for (let i = 1; i <= 10; i++) await audit.append({ actor: `user:usr_${i}`, action: 'recording.grant', userId: `usr_${i}`, recordingId: `rec_${i}`, detail: `entry ${i}` });
      assert.deepEqual(await audit.verify(), { ok: true, entries: 10 });

      const edits: Array<[string, Partial<Tables['audit_log']>, number]> = [
        ['detail', { detail: 'nothing to see' }, 4],
        ['actor', { actor: 'system:retention' }, 6],
        ['at', { at: 1 }, 2],
        ['user', { user_id: 'usr_other' }, 9],
      ];
      for (const [field, change, seq] of edits) {
        const original = await db.selectFrom('audit_log').selectAll().where('seq', '=', seq).executeTakeFirstOrThrow();
        await db.updateTable('audit_log').set(change).where('seq', '=', seq).execute();
        assert.deepEqual(await audit.verify(), { ok: false, entries: seq - 1, brokenAt: seq, reason: 'hash-mismatch' }, `edited ${field}`);
        await db.updateTable('audit_log').set(original).where('seq', '=', seq).execute();
        assert.deepEqual(await audit.verify(), { ok: true, entries: 10 }, `restored ${field}`);
      }

      // A forger who also recomputes the edited entry's hash breaks the next link instead.
      const five = await db.selectFrom('audit_log').selectAll().where('seq', '=', 5).executeTakeFirstOrThrow();
      const forged = { seq: 5, at: Number(five.at), actor: five.actor, action: five.action, userId: five.user_id, recordingId: five.recording_id, detail: 'forged' };
      await db.updateTable('audit_log').set({ detail: 'forged', hash: chainHash(five.prev_hash, forged) }).where('seq', '=', 5).execute();
      assert.deepEqual(await audit.verify(), { ok: false, entries: 5, brokenAt: 6, reason: 'link-mismatch' });
      await db.updateTable('audit_log').set(five).where('seq', '=', 5).execute();

      const last = await db.selectFrom('audit_log').selectAll().where('seq', '=', 10).executeTakeFirstOrThrow();
      await db.deleteFrom('audit_log').where('seq', '=', 10).execute();
      assert.deepEqual(await audit.verify(), { ok: false, entries: 9, brokenAt: 10, reason: 'head-mismatch' });
      await db.insertInto('audit_log').values(last).execute();

      await db.deleteFrom('audit_log').where('seq', '=', 7).execute();
      assert.deepEqual(await audit.verify(), { ok: false, entries: 6, brokenAt: 7, reason: 'missing-entry' });
    });
  });

  test(`${kind}: "monologue audit verify" prints {ok, entries}, and {ok:false, entries, brokenAt, reason} with exit 1 naming the first broken link`, async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'monologue-audit-'));
    // SQLite: the CLI's own database file in its data folder.
    const inDataDir = async (): Promise<TestDatabase> => ({ name: 'sqlite', url: join(dataDir, 'monologue.db'), drop: async () => undefined });
    try {
      await withDatabase(kind === 'sqlite' ? inDataDir : fresh, async (db, target) => {
        const env = { ...process.env, MONOLOGUE_DATA_DIR: dataDir, DATABASE_URL: target.name === 'postgres' ? target.url : '' };
        const cli = () => spawnSync(process.execPath, ['--import', 'tsx', 'src/cli.ts', 'audit', 'verify'], { env, encoding: 'utf8' });
        const audit = createAuditLog(db);
        for (let i = 0; i < 5; i++) await audit.append({ actor: 'operator:ops', action: 'recording.decrypt', recordingId: `rec_${i}` });
        const good = cli();
        assert.equal(good.status, 0, good.stderr);
        assert.deepEqual(JSON.parse(good.stdout), { ok: true, entries: 5 });

        await db.updateTable('audit_log').set({ detail: 'edited' }).where('seq', '=', 3).execute();
        const bad = cli();
        assert.equal(bad.status, 1);
        assert.deepEqual(JSON.parse(bad.stdout), { ok: false, entries: 2, brokenAt: 3, reason: 'hash-mismatch' });
        const err = JSON.parse(bad.stderr) as { code: string; message: string };
        assert.equal(err.code, 'AUDIT_CHAIN_BROKEN');
        assert.match(err.message, /seq 3 \(hash-mismatch\)/);
      });
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });

  test(`${kind}: migration 0005 moved the old audit rows into the chain, in time order, attributed to their recording's owner`, async () => {
    const target = await fresh();
    const isPg = target.name === 'postgres';
    const pool = isPg ? new pg.Pool({ connectionString: target.url, max: 2 }) : undefined;
    const db = new Kysely<Tables>({ dialect: pool ? new PostgresDialect({ pool }) : new SqliteDialect({ database: new SQLite(target.url) }) });
    try {
      const migrator = await createMigrator(db, isPg);
      const to4 = await migrator.migrateTo('0004_recording_node');
      assert.equal(to4.error, undefined);
      assert.deepEqual(to4.results?.map((r) => r.migrationName).at(-1), '0004_recording_node');
      await sql`insert into users (id, phone_hash, phone_cipher, enrolled, created_at) values ('usr_old1', 'h1', 'c1', 1, 1000), ('usr_old2', 'h2', 'c2', 1, 1000)`.execute(db);
      await sql`insert into recordings (id, call_id, user_id, state, created_at) values ('rec_old1', 'call_old1', 'usr_old1', 'complete', 2000), ('rec_old2', 'call_old2', 'usr_old2', 'complete', 2000)`.execute(db);
      // Inserted out of time order: the chain follows `at`.
      await sql`insert into audit (id, at, actor, action, recording_id, detail) values
        ('a3', 5000, 'operator:ops', 'recording.verify', 'rec_old2', 'ok'),
        ('a1', 3000, 'operator:ops', 'recording.decrypt', 'rec_old1', null),
        ('a2', 4000, 'operator:ops', 'keys.rotate', null, 'kek_1 -> kek_2, 2 rewrapped')`.execute(db);

      const latest = await migrator.migrateToLatest();
      assert.equal(latest.error, undefined);
      const audit = createAuditLog(db);
      assert.deepEqual(await audit.verify(), { ok: true, entries: 3 });
      const rows = await db.selectFrom('audit_log').select(['seq', 'at', 'action', 'user_id', 'recording_id', 'detail']).orderBy('seq').execute();
      assert.deepEqual(
        rows.map((r) => [Number(r.seq), Number(r.at), r.action, r.user_id, r.recording_id, r.detail]),
        [
          [1, 3000, 'recording.decrypt', 'usr_old1', 'rec_old1', null],
          [2, 4000, 'keys.rotate', null, null, 'kek_1 -> kek_2, 2 rewrapped'],
          [3, 5000, 'recording.verify', 'usr_old2', 'rec_old2', 'ok'],
        ],
      );
      assert.deepEqual((await audit.forUser('usr_old1', { limit: 10 })).map((e) => e.seq), [1]);
      // The old table is gone and the chain goes on from the moved rows.
      await assert.rejects(sql`select * from audit`.execute(db));
      await audit.append({ actor: 'system:test', action: 'recording.verify', recordingId: 'rec_old1', userId: 'usr_old1' });
      assert.deepEqual(await audit.verify(), { ok: true, entries: 4 });
    } finally {
      await db.destroy();
      await target.drop();
    }
  });
}
