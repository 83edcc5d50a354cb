import { sql, type Kysely, type Migration, type MigrationProvider } from 'kysely';

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
};

export const migrationProvider: MigrationProvider = {
  getMigrations: async () => migrations,
};
