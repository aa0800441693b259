import { parentPort, workerData } from 'node:worker_threads';
import { PGlite } from '@electric-sql/pglite';
import { EmbeddedServer } from './embedded-server.ts';

/*
 * The embedded database's owner serves it from this worker thread: PGlite runs every query on
 * the thread that holds it, so on the owner's main thread a long pipeline statement from another
 * process would stop its HTTP server answering. The owner's main thread connects to this
 * thread's socket like any other process does.
 */
export type ServerThreadData = { address: string; dataDir: string };
export type ServerThreadMessage =
  | { kind: 'taken' }
  | { kind: 'ready' }
  | { kind: 'failed'; message: string; code?: string }
  | { kind: 'closed' };

const port = parentPort!;
const { address, dataDir } = workerData as ServerThreadData;
const tell = (message: ServerThreadMessage) => port.postMessage(message);

const server = new EmbeddedServer();
try {
  await server.listen(address);
} catch (error) {
  const { code, message } = error as NodeJS.ErrnoException;
  tell(code === 'EADDRINUSE' ? { kind: 'taken' } : { kind: 'failed', message, code });
  port.close();
}
if (server.listening()) {
  try {
    server.attach(await PGlite.create(dataDir));
    tell({ kind: 'ready' });
  } catch (error) {
    await server.close();
    tell({ kind: 'failed', message: (error as Error).message });
    port.close();
  }
  port.on('message', async (message: unknown) => {
    if (message !== 'close') return;
    await server.close();
    tell({ kind: 'closed' });
    port.close();
  });
}
