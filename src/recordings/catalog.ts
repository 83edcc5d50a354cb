import type { Db } from '../db/database.js';
import type { RecordingState } from '../db/tables.js';
import { NO_EVENTS, type EventSink } from '../events/outbox.js';

export type { RecordingState };

export interface RecordingRow {
  id: string;
  callId: string;
  userId: string;
  state: RecordingState;
  chunkCount: number;
  durationMs: number;
  talkMs: number;
  wrappedKey: string | null;
  kekId: string | null;
  createdAt: number;
  endedAt: number | null;
  failure: string | null;
}

/** Recording metadata. Reads for a user always filter by owner. */
export interface RecordingCatalog {
  create(r: { id: string; callId: string; userId: string; wrappedKey: string; kekId: string }): Promise<void>;
  chunkStored(id: string, chunkCount: number): Promise<void>;
  finish(id: string, r: { state: Exclude<RecordingState, 'recording'>; chunkCount: number; durationMs: number; talkMs: number; failure?: string }): Promise<void>;
  /**
   * At start: this node's recordings left `recording` by a process that died are `incomplete`.
   * Other nodes' live recordings are theirs to judge. Returns the ids.
   */
  markInterrupted(): Promise<string[]>;
  /** Operator access (CLI): any recording by id. */
  get(id: string): Promise<RecordingRow | undefined>;
  /** User access: only the owner's. */
  getOwned(userId: string, id: string): Promise<RecordingRow | undefined>;
  byCall(callId: string): Promise<RecordingRow | undefined>;
  all(): Promise<RecordingRow[]>;
  rewrap(id: string, kekId: string, wrappedKey: string): Promise<void>;
}

/**
 * `now`: the server clock its times are written in (retention compares `created_at` with it). `events`:
 * a finished recording's `recording.completed` / `recording.failed` is written in the finish's transaction.
 */
export function createRecordingCatalog(db: Db, nodeId = 'local', now: () => number = Date.now, events: EventSink = NO_EVENTS): RecordingCatalog {
  const finishedEvent = (ex: Db, r: { id: string; call_id: string; user_id: string; state: RecordingState; duration_ms: number; talk_ms: number; chunk_count: number; failure: string | null }) =>
    events.write(ex, r.state === 'complete' ? 'recording.completed' : 'recording.failed', {
      recordingId: r.id,
      callId: r.call_id,
      userId: r.user_id,
      state: r.state,
      durationMs: Number(r.duration_ms),
      talkMs: Number(r.talk_ms),
      chunkCount: Number(r.chunk_count),
      failure: r.failure,
    });
  const finishedColumns = ['id', 'call_id', 'user_id', 'state', 'duration_ms', 'talk_ms', 'chunk_count', 'failure'] as const;
  const select = () => db.selectFrom('recordings').selectAll();
  const toRow = (r: Awaited<ReturnType<ReturnType<typeof select>['executeTakeFirstOrThrow']>>): RecordingRow => ({
    id: r.id,
    callId: r.call_id,
    userId: r.user_id,
    state: r.state,
    chunkCount: Number(r.chunk_count),
    durationMs: Number(r.duration_ms),
    talkMs: Number(r.talk_ms),
    wrappedKey: r.wrapped_key,
    kekId: r.kek_id,
    createdAt: Number(r.created_at),
    endedAt: r.ended_at === null ? null : Number(r.ended_at),
    failure: r.failure,
  });
  return {
    async create(r) {
      await db
        .insertInto('recordings')
        .values({
          id: r.id,
          node_id: nodeId,
          call_id: r.callId,
          user_id: r.userId,
          state: 'recording',
          chunk_count: 0,
          duration_ms: 0,
          talk_ms: 0,
          wrapped_key: r.wrappedKey,
          kek_id: r.kekId,
          created_at: now(),
          ended_at: null,
          failure: null,
        })
        .execute();
    },
    async chunkStored(id, chunkCount) {
      await db.updateTable('recordings').set({ chunk_count: chunkCount }).where('id', '=', id).where('state', '=', 'recording').execute();
    },
    async finish(id, r) {
      await db.transaction().execute(async (tx) => {
        const done = await tx
          .updateTable('recordings')
          .set({ state: r.state, chunk_count: r.chunkCount, duration_ms: r.durationMs, talk_ms: r.talkMs, ended_at: now(), failure: r.failure ?? null })
          .where('id', '=', id)
          // Shredded while it was still being recorded (its account was deleted): it stays deleted.
          .where('state', '<>', 'deleted')
          .returning(finishedColumns)
          .executeTakeFirst();
        if (done) await finishedEvent(tx, done);
      });
    },
    async markInterrupted() {
      return db.transaction().execute(async (tx) => {
        const rows = await tx
          .updateTable('recordings')
          .set({ state: 'incomplete', ended_at: now(), failure: 'interrupted: the service stopped during the call' })
          .where('state', '=', 'recording')
          .where('node_id', '=', nodeId)
          .returning(finishedColumns)
          .execute();
        for (const row of rows) await finishedEvent(tx, row);
        return rows.map((row) => row.id);
      });
    },
    async get(id) {
      const r = await select().where('id', '=', id).executeTakeFirst();
      return r ? toRow(r) : undefined;
    },
    async getOwned(userId, id) {
      const r = await select().where('id', '=', id).where('user_id', '=', userId).executeTakeFirst();
      return r ? toRow(r) : undefined;
    },
    async byCall(callId) {
      const r = await select().where('call_id', '=', callId).executeTakeFirst();
      return r ? toRow(r) : undefined;
    },
    async all() {
      return (await select().orderBy('created_at').execute()).map(toRow);
    },
    async rewrap(id, kekId, wrappedKey) {
      await db.updateTable('recordings').set({ kek_id: kekId, wrapped_key: wrappedKey }).where('id', '=', id).execute();
    },
  };
}

/** Object keys hold only the random recording id: no phone number, no user id. */
export const objectKeys = {
  prefix: (recordingId: string) => `rec/${recordingId}/`,
  chunk: (recordingId: string, index: number) => `rec/${recordingId}/chunk-${String(index).padStart(6, '0')}`,
  manifest: (recordingId: string) => `rec/${recordingId}/manifest.json`,
  /** Whether a key names a chunk (not a manifest or anything else). */
  isChunk: (key: string) => /^rec\/[^/]+\/chunk-\d+$/.test(key),
};
