import { createServer, type Server, type Socket } from 'node:net';
import type { PGlite } from '@electric-sql/pglite';

/**
 * Serves one PGlite database over the PostgreSQL wire protocol to any number of
 * connections, from this process or others. PGlite is a single backend session, so a
 * connection holds it from its first message until the backend is idle again (a
 * ReadyForQuery outside any transaction): a transaction, an extended-protocol exchange
 * or a COPY runs whole, and other connections' messages wait their turn. A connection
 * that goes away while holding the session has its transaction rolled back.
 */
export class EmbeddedServer {
  private readonly server: Server;
  private readonly connections = new Set<Connection>();
  private holder: Connection | null = null;
  private readonly waiting: Array<() => void> = [];
  private closing = false;
  private pglite: PGlite | null = null;
  private readonly attached: Promise<void>;
  private markAttached: () => void = () => undefined;

  constructor() {
    this.attached = new Promise((resolve) => {
      this.markAttached = resolve;
    });
    this.server = createServer((socket) => {
      if (this.closing) {
        socket.destroy();
        return;
      }
      this.connections.add(new Connection(this, socket));
    });
  }

  /** Listens on a Unix socket path (a leading NUL byte: Linux's abstract namespace). Fails with EADDRINUSE when taken. */
  listen(path: string): Promise<void> {
    return new Promise((resolve, reject) => {
      const failed = (error: Error) => reject(error);
      this.server.once('error', failed);
      this.server.listen(path, () => {
        this.server.off('error', failed);
        resolve();
      });
    });
  }

  listening(): boolean {
    return this.server.listening;
  }

  /** The database to serve: connections accepted before it is attached wait for it. */
  attach(pglite: PGlite): void {
    this.pglite = pglite;
    this.markAttached();
  }

  /**
   * Drops every connection (their transactions are rolled back), closes the database,
   * and only then stops listening: the address stays taken until the files are closed.
   */
  async close(): Promise<void> {
    this.closing = true;
    await Promise.all([...this.connections].map((connection) => connection.destroy()));
    await this.pglite?.close();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  async acquire(connection: Connection): Promise<void> {
    while (this.holder !== null && this.holder !== connection) {
      await new Promise<void>((resolve) => this.waiting.push(resolve));
    }
    this.holder = connection;
  }

  holds(connection: Connection): boolean {
    return this.holder === connection;
  }

  release(connection: Connection): void {
    if (this.holder !== connection) return;
    this.holder = null;
    // every waiter re-checks; the first to run takes the session
    for (const wake of this.waiting.splice(0)) wake();
  }

  /** Runs raw protocol messages; the backend's answer goes to `onData`. */
  async exec(message: Uint8Array, onData: (data: Uint8Array) => void): Promise<void> {
    await this.attached;
    const pglite = this.pglite as PGlite;
    await pglite.runExclusive(() => pglite.execProtocolRawStream(message, { onRawData: onData }));
  }

  forget(connection: Connection): void {
    this.connections.delete(connection);
    this.release(connection);
  }
}

const SSL_REQUEST = 80877103;
const GSSENC_REQUEST = 80877104;
const CANCEL_REQUEST = 80877102;
const TERMINATE = 0x58; // 'X'
const SYNC = Uint8Array.of(0x53, 0, 0, 0, 4);
const COPY_FAIL = Uint8Array.from(Buffer.concat([Buffer.from([0x66, 0, 0, 0, 14]), Buffer.from('disconnected\0')]));
const ROLLBACK = Uint8Array.from(Buffer.concat([Buffer.from([0x51, 0, 0, 0, 13]), Buffer.from('ROLLBACK\0')]));

/** Follows the backend's messages across chunks for the two facts the session needs. */
class BackendState {
  /** the status byte of the last ReadyForQuery: I idle, T in a transaction, E in a failed one */
  status: 'I' | 'T' | 'E' | null = null;
  /** set when a ReadyForQuery went by since the last reset */
  ready = false;
  copyIn = false;
  private header: number[] = [];
  private type = '';
  private bodyLength = 0;
  private remaining = 0;

  feed(chunk: Uint8Array): void {
    let offset = 0;
    while (offset < chunk.length) {
      if (this.remaining > 0) {
        if (this.type === 'Z' && this.remaining === this.bodyLength) {
          this.status = String.fromCharCode(chunk[offset] as number) as 'I' | 'T' | 'E';
          this.ready = true;
          this.copyIn = false;
        }
        const taken = Math.min(this.remaining, chunk.length - offset);
        this.remaining -= taken;
        offset += taken;
        continue;
      }
      this.header.push(chunk[offset] as number);
      offset += 1;
      if (this.header.length === 5) {
        this.type = String.fromCharCode(this.header[0] as number);
        this.bodyLength = Buffer.from(this.header.slice(1)).readInt32BE(0) - 4;
        this.remaining = this.bodyLength;
        this.header = [];
        if (this.type === 'G') this.copyIn = true;
      }
    }
  }
}

class Connection {
  private buffer: Buffer = Buffer.alloc(0);
  private started = false;
  private readonly pending: Buffer[] = [];
  private pumping = false;
  private gone = false;
  private readonly backend = new BackendState();
  private ended: Promise<void> | null = null;

  constructor(
    private readonly server: EmbeddedServer,
    private readonly socket: Socket,
  ) {
    socket.setNoDelay(true);
    socket.on('data', (data) => this.receive(data));
    socket.on('error', () => this.end());
    socket.on('close', () => this.end());
  }

  destroy(): Promise<void> {
    this.socket.destroy();
    return this.end();
  }

  private receive(data: Buffer): void {
    this.buffer = this.buffer.length === 0 ? data : Buffer.concat([this.buffer, data]);
    for (;;) {
      const message = this.nextMessage();
      if (message === null) break;
      if (message.length === 0) continue;
      this.pending.push(message);
    }
    void this.pump();
  }

  /** The next whole message, an empty buffer for one answered here, or null when more bytes are needed. */
  private nextMessage(): Buffer | null {
    if (!this.started) {
      if (this.buffer.length < 8) return null;
      const length = this.buffer.readInt32BE(0);
      if (this.buffer.length < length) return null;
      const code = this.buffer.readInt32BE(4);
      const message = this.buffer.subarray(0, length);
      this.buffer = this.buffer.subarray(length);
      if (code === SSL_REQUEST || code === GSSENC_REQUEST) {
        this.socket.write('N');
        return Buffer.alloc(0);
      }
      if (code === CANCEL_REQUEST) {
        this.socket.destroy();
        return Buffer.alloc(0);
      }
      this.started = true;
      return message;
    }
    if (this.buffer.length < 5) return null;
    const length = 1 + this.buffer.readInt32BE(1);
    if (this.buffer.length < length) return null;
    const message = this.buffer.subarray(0, length);
    this.buffer = this.buffer.subarray(length);
    return message;
  }

  private async pump(): Promise<void> {
    if (this.pumping) return;
    this.pumping = true;
    try {
      while (this.pending.length > 0 && !this.gone) {
        const message = this.pending.shift() as Buffer;
        if (message[0] === TERMINATE && this.started) {
          this.socket.end();
          break;
        }
        await this.server.acquire(this);
        if (this.gone) break;
        this.backend.ready = false;
        await this.server.exec(message, (data) => {
          this.backend.feed(data);
          // a view on PGlite's memory, reused by its next message: copy before the socket queues it
          if (data.length > 0 && this.socket.writable) this.socket.write(Buffer.from(data));
        });
        if (this.backend.ready && this.backend.status === 'I' && !this.backend.copyIn) this.server.release(this);
      }
    } catch {
      this.socket.destroy();
    } finally {
      this.pumping = false;
    }
  }

  /** Once: a connection that leaves mid-exchange leaves the backend idle for the next one. */
  private end(): Promise<void> {
    if (this.ended) return this.ended;
    this.gone = true;
    this.ended = (async () => {
      while (this.pumping) await new Promise((resolve) => setImmediate(resolve));
      if (this.server.holds(this)) await this.resetBackend();
      this.server.forget(this);
    })();
    return this.ended;
  }

  private async resetBackend(): Promise<void> {
    const state = new BackendState();
    const ignore = (data: Uint8Array) => state.feed(data);
    try {
      if (this.backend.copyIn) await this.server.exec(COPY_FAIL, ignore);
      await this.server.exec(SYNC, ignore);
      if (state.status !== 'I') await this.server.exec(ROLLBACK, ignore);
    } catch {
      // the backend will answer the next connection's messages or fail them: nothing more to do here
    }
  }
}
