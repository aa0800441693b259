import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { connect, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { ServerThreadData, ServerThreadMessage } from './embedded-server.thread.ts';

/**
 * The embedded database has one owner process at a time. The owner is the process that
 * binds the database's socket address, opens the files and serves them; every other
 * process connects to that address. On Linux the address is in the abstract namespace,
 * derived from the data directory's real path: binding it is an atomic lock that the
 * kernel releases when the owner dies, so a crashed owner never leaves a stale lock.
 * A process that is not the owner watches it and takes over when it goes away, so
 * commands and servers may start and stop in any order. The owner serves the files from a
 * worker thread (embedded-server.thread.ts), so that its own event loop never runs SQL.
 */
export interface EmbeddedDatabase {
  /** the socket the pg pool connects to */
  readonly address: string;
  /** whether this process opened the files (the others connect to it) */
  isOwner(): boolean;
  close(): Promise<void>;
}

export interface OwnerRecord {
  pid: number;
  command: string;
  since: string;
}

const RETRY_MS = 100;
const CLAIM_TIMEOUT_MS = 30_000;

/** Beside the database's folder, not in it: PostgreSQL owns what is inside. */
function ownerFile(dataDir: string): string {
  return `${dataDir.replace(/\/+$/, '')}.owner.json`;
}

/** A socket whose connect() ignores pg's host and port and connects to the embedded address. */
export function socketTo(address: string): Socket {
  const socket = new Socket();
  const connectTo = Socket.prototype.connect.bind(socket) as (options: { path: string }) => Socket;
  socket.connect = (() => connectTo({ path: address })) as unknown as Socket['connect'];
  return socket;
}

export async function openEmbedded(dataDir: string): Promise<EmbeddedDatabase> {
  if (dataDir.startsWith('memory://')) return openPrivate(dataDir);
  mkdirSync(dataDir, { recursive: true });
  const directory = realpathSync(dataDir);
  const address = addressFor(directory);
  let server: ServerThread | null = null;
  let watch: Socket | null = null;
  let closed = false;

  async function claim(): Promise<void> {
    const deadline = Date.now() + CLAIM_TIMEOUT_MS;
    while (!closed) {
      const thread = await startServerThread(address, directory);
      if (thread) {
        server = thread;
        writeOwnerRecord(directory);
        return;
      }
      const socket = await watchOwner(address);
      if (socket) {
        watch = socket;
        // the owner stopped or died: take its place (or find who did)
        socket.once('close', () => {
          watch = null;
          // a failed takeover surfaces as this process's next query failing to connect
          if (!closed) claim().catch(() => undefined);
        });
        return;
      }
      if (Date.now() > deadline) throw new Error(`the embedded database at ${directory} is held by a process that does not answer`);
      await delay(RETRY_MS);
    }
  }

  await claim();
  return {
    address,
    isOwner: () => server !== null,
    async close() {
      closed = true;
      (watch as Socket | null)?.destroy();
      const owned = server as ServerThread | null;
      if (owned) {
        removeOwnerRecord(directory);
        await owned.close();
      }
    },
  };
}

/** Who serves the embedded database in `dataDir` now, if anyone said so (informative: the lock is the address). */
export function readOwnerRecord(dataDir: string): OwnerRecord | null {
  try {
    return JSON.parse(readFileSync(ownerFile(dataDir), 'utf8')) as OwnerRecord;
  } catch {
    return null;
  }
}

function writeOwnerRecord(directory: string): void {
  const record: OwnerRecord = {
    pid: process.pid,
    command: process.argv.slice(2).join(' ') || process.argv[1] || 'node',
    since: new Date().toISOString(),
  };
  writeFileSync(ownerFile(directory), `${JSON.stringify(record)}\n`);
}

function removeOwnerRecord(directory: string): void {
  if (readOwnerRecord(directory)?.pid === process.pid) rmSync(ownerFile(directory), { force: true });
}

/** Linux: an abstract socket named after the directory. Elsewhere a socket file in it. */
function addressFor(directory: string): string {
  if (process.platform === 'linux') {
    return `\0cible-pglite-${createHash('sha256').update(directory).digest('hex').slice(0, 32)}`;
  }
  return join(directory, '.s.cible');
}

interface ServerThread {
  close(): Promise<void>;
}

/**
 * Binds `address` and opens `dataDir` in a worker thread: null when another process holds the
 * address. From the sources (tsx, vitest) the thread registers tsx first; from dist/ it runs the
 * compiled module.
 */
async function startServerThread(address: string, dataDir: string): Promise<ServerThread | null> {
  const workerData: ServerThreadData = { address, dataDir };
  const module = new URL(`./embedded-server.thread${extname(fileURLToPath(import.meta.url))}`, import.meta.url);
  const worker = module.pathname.endsWith('.ts')
    ? new Worker(
        `import(${JSON.stringify(import.meta.resolve('tsx/esm/api'))})` +
          `.then(({ register }) => { register(); return import(${JSON.stringify(module.href)}); })` +
          '.catch((error) => { process.exitCode = 1; throw error; })',
        { eval: true, workerData, execArgv: [] },
      )
    : // the thread needs no flag of the process (one such as --input-type would even stop it)
      new Worker(module, { workerData, execArgv: [] });
  const messages: ServerThreadMessage[] = [];
  let wake: (() => void) | null = null;
  worker.on('message', (message: ServerThreadMessage) => {
    messages.push(message);
    wake?.();
  });
  let failure: Error | null = null;
  worker.on('error', (error) => {
    failure = error;
    wake?.();
  });
  worker.on('exit', () => wake?.());
  const next = async (): Promise<ServerThreadMessage> => {
    for (;;) {
      const message = messages.shift();
      if (message) return message;
      if (failure) throw failure;
      if (worker.threadId === -1) throw new Error('the embedded database thread stopped before it answered');
      await new Promise<void>((resolve) => (wake = resolve));
    }
  };
  const first = await next();
  if (first.kind === 'taken') return null;
  if (first.kind === 'failed') throw Object.assign(new Error(first.message), first.code ? { code: first.code } : {});
  return {
    async close() {
      worker.postMessage('close');
      while ((await next().catch(() => ({ kind: 'closed' }) as const)).kind !== 'closed');
      await worker.terminate();
    },
  };
}

/** A connection to the live owner, kept open to learn when it goes; null when nobody answers. */
function watchOwner(address: string): Promise<Socket | null> {
  return new Promise((resolve) => {
    const socket = connect({ path: address });
    socket.once('connect', () => {
      socket.removeAllListeners('error');
      socket.on('error', () => undefined);
      resolve(socket);
    });
    socket.once('error', (error: NodeJS.ErrnoException) => {
      // a socket file left by a crashed owner (not on Linux, where the address dies with it)
      if (error.code === 'ECONNREFUSED' && !address.startsWith('\0')) {
        try {
          unlinkSync(address);
        } catch {}
      }
      resolve(null);
    });
  });
}

/** A throw-away database (tests): served on an address nobody else knows. */
async function openPrivate(dataDir: string): Promise<EmbeddedDatabase> {
  const address =
    process.platform === 'linux'
      ? `\0cible-pglite-private-${randomBytes(12).toString('hex')}`
      : join(mkdtempSync(join(tmpdir(), 'cible-pglite-')), '.s.cible');
  const server = await startServerThread(address, dataDir);
  if (!server) throw new Error(`the private embedded database address ${JSON.stringify(address)} is taken`);
  return { address, isOwner: () => true, close: () => server.close() };
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
