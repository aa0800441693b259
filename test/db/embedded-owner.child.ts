// One process of the embedded-owner test: opens the data directory, says whether it owns it,
// waits for its release file, then writes its rows and closes.
import { existsSync } from 'node:fs';
import { sql } from 'kysely';
import { openDatabase } from '../../src/db/engine.ts';

const [dataDir, name, releaseFile] = process.argv.slice(2) as [string, string, string];
const database = await openDatabase({ kind: 'pglite', dataDir });
await sql`CREATE TABLE IF NOT EXISTS writes (name text NOT NULL, n int NOT NULL)`.execute(database.db);
console.log(JSON.stringify({ name, owner: database.isOwner() }));
while (!existsSync(releaseFile)) await new Promise((resolve) => setTimeout(resolve, 20));
for (let n = 0; n < 50; n++) {
  await database.db.transaction().execute(async (trx) => {
    await sql`INSERT INTO writes VALUES (${name}, ${n})`.execute(trx);
  });
}
console.log(JSON.stringify({ name, done: true, owner: database.isOwner() }));
await database.close();
