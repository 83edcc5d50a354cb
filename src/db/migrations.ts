import { PostgresAdapter, sql, type Kysely, type Migration, type MigrationProvider } from 'kysely';
import { chainHash, GENESIS_HASH } from '../audit/chain-hash.js';

/** One migration set for SQLite and PostgreSQL: only types both understand. */
const migrations: Record<string, Migration> = {
  '0001_accounts_calls': {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('users')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('phone_hash', 'text', (c) => c.notNull().unique())
        .addColumn('phone_cipher', 'text', (c) => c.notNull())
        .addColumn('enrolled', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('sessions')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('user_id', 'text', (c) => c.notNull().references('users.id').onDelete('cascade'))
        .addColumn('token_hash', 'text', (c) => c.notNull().unique())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('expires_at', 'bigint', (c) => c.notNull())
        .addColumn('revoked_at', 'bigint')
        .execute();
      await db.schema
        .createTable('calls')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('user_id', 'text', (c) => c.notNull().references('users.id').onDelete('cascade'))
        .addColumn('direction', 'text', (c) => c.notNull().check(sql`direction in ('outbound', 'inbound')`))
        .addColumn('counterpart_hash', 'text', (c) => c.notNull())
        .addColumn('counterpart_cipher', 'text', (c) => c.notNull())
        .addColumn('sip_call_id', 'text')
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('ringing_at', 'bigint')
        .addColumn('answered_at', 'bigint')
        .addColumn('ended_at', 'bigint')
        .addColumn('end_reason', 'text')
        .addColumn('sip_status', 'integer')
        .execute();
      await db.schema.createIndex('calls_user_created').on('calls').columns(['user_id', 'created_at']).execute();
      await db.schema.createIndex('calls_sip_call_id').on('calls').column('sip_call_id').execute();
    },
  },
  '0002_recordings': {
    async up(db: Kysely<unknown>) {
      await db.schema.alterTable('users').addColumn('consent_version', 'text').execute();
      await db.schema.alterTable('users').addColumn('consent_at', 'bigint').execute();
      await db.schema.alterTable('calls').addColumn('recording_note', 'text').execute();
      await db.schema
        .createTable('recordings')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('call_id', 'text', (c) => c.notNull().unique())
        .addColumn('user_id', 'text', (c) => c.notNull().references('users.id').onDelete('cascade'))
        .addColumn('state', 'text', (c) => c.notNull().check(sql`state in ('recording', 'complete', 'incomplete', 'failed')`))
        .addColumn('chunk_count', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('duration_ms', 'bigint', (c) => c.notNull().defaultTo(0))
        .addColumn('talk_ms', 'bigint', (c) => c.notNull().defaultTo(0))
        .addColumn('wrapped_key', 'text')
        .addColumn('kek_id', 'text')
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('ended_at', 'bigint')
        .addColumn('failure', 'text')
        .execute();
      await db.schema.createIndex('recordings_user').on('recordings').columns(['user_id', 'created_at']).execute();
      await db.schema.createIndex('recordings_state').on('recordings').column('state').execute();
      await db.schema
        .createTable('audit')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('at', 'bigint', (c) => c.notNull())
        .addColumn('actor', 'text', (c) => c.notNull())
        .addColumn('action', 'text', (c) => c.notNull())
        .addColumn('recording_id', 'text')
        .addColumn('detail', 'text')
        .execute();
    },
  },
  '0003_payouts': {
    async up(db: Kysely<unknown>) {
      await db.schema.alterTable('calls').addColumn('provider_duration_s', 'integer').execute();
      await db.schema.alterTable('calls').addColumn('provider_call_id', 'text').execute();
      await db.schema
        .createTable('ledger_entries')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('user_id', 'text', (c) => c.notNull().references('users.id').onDelete('cascade'))
        .addColumn('call_id', 'text')
        .addColumn('type', 'text', (c) => c.notNull().check(sql`type in ('call_credit', 'adjustment', 'reversal', 'payout')`))
        .addColumn('state', 'text', (c) => c.notNull().check(sql`state in ('pending', 'available', 'paid')`))
        .addColumn('amount_micros', 'bigint', (c) => c.notNull())
        .addColumn('idem_key', 'text', (c) => c.notNull().unique())
        .addColumn('memo', 'text')
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('ledger_user').on('ledger_entries').columns(['user_id', 'created_at']).execute();
      await db.schema
        .createTable('settlements')
        .addColumn('call_id', 'text', (c) => c.primaryKey())
        .addColumn('user_id', 'text', (c) => c.notNull().references('users.id').onDelete('cascade'))
        .addColumn('day', 'text', (c) => c.notNull())
        .addColumn('billable_s', 'integer', (c) => c.notNull())
        .addColumn('talk_s', 'integer', (c) => c.notNull())
        .addColumn('rate_micros_per_min', 'bigint', (c) => c.notNull())
        .addColumn('amount_micros', 'bigint', (c) => c.notNull())
        .addColumn('state', 'text', (c) => c.notNull().check(sql`state in ('credited', 'held', 'released', 'rejected', 'unpaid')`))
        .addColumn('flags', 'text', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('reviewed_at', 'bigint')
        .addColumn('reviewer', 'text')
        .execute();
      await db.schema.createIndex('settlements_user_day').on('settlements').columns(['user_id', 'day']).execute();
      await db.schema
        .createTable('webhook_events')
        .addColumn('provider', 'text', (c) => c.notNull())
        .addColumn('event_id', 'text', (c) => c.notNull())
        .addColumn('received_at', 'bigint', (c) => c.notNull())
        .addColumn('call_ref', 'text')
        .addPrimaryKeyConstraint('webhook_events_pk', ['provider', 'event_id'])
        .execute();
      await db.schema.createIndex('calls_provider_call_id').on('calls').column('provider_call_id').execute();
    },
  },
  '0004_recording_node': {
    async up(db: Kysely<unknown>) {
      await db.schema.alterTable('recordings').addColumn('node_id', 'text').execute();
    },
  },
  '0005_owner_api': {
    async up(db: Kysely<unknown>) {
      await db.schema.alterTable('users').addColumn('deleted_at', 'bigint').execute();
      await db.schema.alterTable('recordings').addColumn('deleted_at', 'bigint').execute();
      await db.schema
        .createTable('consent_events')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('user_id', 'text', (c) => c.notNull().references('users.id').onDelete('cascade'))
        // null: consent withdrawn
        .addColumn('version', 'text')
        .addColumn('at', 'bigint', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('consent_events_user').on('consent_events').columns(['user_id', 'at']).execute();
      await db.schema
        .createTable('grants')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('token_hash', 'text', (c) => c.notNull().unique())
        .addColumn('user_id', 'text', (c) => c.notNull())
        .addColumn('recording_id', 'text', (c) => c.notNull())
        .addColumn('purpose', 'text', (c) => c.notNull().check(sql`purpose in ('play', 'download')`))
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('expires_at', 'bigint', (c) => c.notNull())
        .addColumn('requests', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('bytes_served', 'bigint', (c) => c.notNull().defaultTo(0))
        // set when the grant can serve no more (expired, used up, revoked) and its read was audited
        .addColumn('closed_at', 'bigint')
        .execute();
      await db.schema.createIndex('grants_recording').on('grants').column('recording_id').execute();
      // The hash-chained audit log (DESIGN §4.4). seq is dense from 1; audit_head holds the last link so
      // that a deleted tail is seen, and its row lock serialises appends on SQLite (a write lock first).
      await db.schema
        .createTable('audit_log')
        .addColumn('seq', 'bigint', (c) => c.primaryKey())
        .addColumn('at', 'bigint', (c) => c.notNull())
        .addColumn('actor', 'text', (c) => c.notNull())
        .addColumn('action', 'text', (c) => c.notNull())
        .addColumn('user_id', 'text')
        .addColumn('recording_id', 'text')
        .addColumn('detail', 'text')
        .addColumn('prev_hash', 'text', (c) => c.notNull())
        .addColumn('hash', 'text', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('audit_log_user').on('audit_log').columns(['user_id', 'seq']).execute();
      await db.schema
        .createTable('audit_head')
        .addColumn('id', 'integer', (c) => c.primaryKey())
        .addColumn('seq', 'bigint', (c) => c.notNull())
        .addColumn('hash', 'text', (c) => c.notNull())
        .execute();
      // Earlier, unchained audit rows move into the chain in their order, attributed to their recording's owner.
      const old = await sql<{ at: number; actor: string; action: string; recording_id: string | null; detail: string | null; user_id: string | null }>`
        select a.at, a.actor, a.action, a.recording_id, a.detail, r.user_id
        from audit a left join recordings r on r.id = a.recording_id order by a.at, a.id`.execute(db);
      let head = { seq: 0, hash: GENESIS_HASH };
      for (const r of old.rows) {
        const entry = { seq: head.seq + 1, at: Number(r.at), actor: r.actor, action: r.action, userId: r.user_id, recordingId: r.recording_id, detail: r.detail };
        const hash = chainHash(head.hash, entry);
        await sql`insert into audit_log (seq, at, actor, action, user_id, recording_id, detail, prev_hash, hash)
          values (${entry.seq}, ${entry.at}, ${entry.actor}, ${entry.action}, ${entry.userId}, ${entry.recordingId}, ${entry.detail}, ${head.hash}, ${hash})`.execute(db);
        head = { seq: entry.seq, hash };
      }
      await sql`insert into audit_head (id, seq, hash) values (1, ${head.seq}, ${head.hash})`.execute(db);
      await db.schema.dropTable('audit').execute();
    },
  },
  '0006_shred': {
    async up(db: Kysely<unknown>) {
      // 0002's CHECK on recordings.state predates state `deleted` (0005 added the state, not the check).
      // `objects_purged_at`: set once a shredded recording's objects (and spooled chunks) are confirmed
      // removed; null on a `deleted` row means the removal is still owed, and the retention sweeper retries it.
      const states = sql`state in ('recording', 'complete', 'incomplete', 'failed', 'deleted')`;
      if (db.getExecutor().adapter instanceof PostgresAdapter) {
        const checks = await sql<{ conname: string }>`
          select conname from pg_constraint
          where conrelid = 'recordings'::regclass and contype = 'c' and pg_get_constraintdef(oid) like '%state%'`.execute(db);
        for (const c of checks.rows) await sql`alter table recordings drop constraint ${sql.id(c.conname)}`.execute(db);
        await sql`alter table recordings add constraint recordings_state_check check (${states})`.execute(db);
        await db.schema.alterTable('recordings').addColumn('objects_purged_at', 'bigint').execute();
        return;
      }
      // SQLite cannot alter a CHECK: the table is rebuilt from its own definition (so columns other
      // migrations added survive), with the check widened; no other table references it by foreign key.
      const def = await sql<{ type: string; sql: string | null }>`select type, sql from sqlite_master where tbl_name = 'recordings'`.execute(db);
      const table = def.rows.find((r) => r.type === 'table')?.sql ?? '';
      const widened = table.replace(/check\s*\(\s*state in \(([^)]*)\)\s*\)/i, (_m, list: string) => `check (state in (${list}, 'deleted'))`);
      if (widened === table || !/^create table "?recordings"?/i.test(widened)) throw new Error('0006_shred: unexpected definition of table recordings');
      const columns = (await sql<{ name: string }>`select name from pragma_table_info('recordings')`.execute(db)).rows.map((r) => sql.id(r.name));
      await sql.raw(widened.replace(/^create table "?recordings"?/i, 'create table "recordings_0006"')).execute(db);
      await sql`insert into recordings_0006 (${sql.join(columns)}) select ${sql.join(columns)} from recordings`.execute(db);
      await db.schema.dropTable('recordings').execute();
      await db.schema.alterTable('recordings_0006').renameTo('recordings').execute();
      for (const index of def.rows) if (index.type === 'index' && index.sql) await sql.raw(index.sql).execute(db);
      await db.schema.alterTable('recordings').addColumn('objects_purged_at', 'bigint').execute();
    },
  },
  '0007_events': {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('events')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('type', 'text', (c) => c.notNull())
        .addColumn('payload', 'text', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('next_attempt_at', 'bigint')
        .addColumn('delivered_at', 'bigint')
        .addColumn('failed_at', 'bigint')
        .addColumn('last_error', 'text')
        .execute();
      // The worker's claim scans due rows only; delivered and failed rows have next_attempt_at null.
      await db.schema.createIndex('events_due').on('events').columns(['next_attempt_at']).execute();
      await db.schema.createIndex('events_created').on('events').columns(['created_at', 'id']).execute();
    },
  },
  '0008_calls_daily_tally': {
    // The daily caps sum a user's calls of the day twice per call setup (admission, minutes plan). With every
    // column they read in the index, that is an index-only scan instead of a table lookup per call: measured on
    // SQLite with 500 calls a user, 127 → 35 µs. It also serves everything the (user_id, created_at) index did.
    async up(db: Kysely<unknown>) {
      await db.schema
        .createIndex('calls_user_day')
        .on('calls')
        .columns(['user_id', 'created_at', 'direction', 'answered_at', 'ended_at', 'id'])
        .execute();
      await db.schema.dropIndex('calls_user_created').execute();
    },
  },
};

export const migrationProvider: MigrationProvider = {
  getMigrations: async () => migrations,
};
