import { test } from 'node:test';
import assert from 'node:assert/strict';
import { openDatabase } from '../../src/db/database.js';
import { createRecordingCatalog } from '../../src/recordings/catalog.js';
import { databaseKinds } from '../helpers/db.js';

for (const [kind, fresh] of databaseKinds) {
  test(`a restarting node marks only its own live recordings incomplete (${kind})`, async () => {
    const target = await fresh();
    const handle = await openDatabase(target.url);
    try {
      await handle.db.insertInto('users').values({ id: 'usr_a', phone_hash: 'h', phone_cipher: 'c', enrolled: 1, created_at: 1 }).execute();
      const a = createRecordingCatalog(handle.db, 'node-a');
      const b = createRecordingCatalog(handle.db, 'node-b');
      await a.create({ id: 'rec_a', callId: 'call_a', userId: 'usr_a', wrappedKey: 'w', kekId: 'kek_00000000' });
      await b.create({ id: 'rec_b', callId: 'call_b', userId: 'usr_a', wrappedKey: 'w', kekId: 'kek_00000000' });
      assert.deepEqual(await a.markInterrupted(), ['rec_a']);
      assert.equal((await a.get('rec_a'))?.state, 'incomplete');
      assert.equal((await a.get('rec_b'))?.state, 'recording', "node b's live recording is left alone");
      assert.equal(await a.getOwned('usr_other', 'rec_a'), undefined, 'owner-only reads');
    } finally {
      await handle.close();
      await target.drop();
    }
  });
}
