import { spawn } from 'node:child_process';
import { createServer } from 'node:net';

/** A TCP port nobody listens on now. */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

export interface RunningServe {
  url: string;
  /** SIGTERM, then the exit code */
  stop(): Promise<number | null>;
}

const LISTEN_DEADLINE_MS = 240_000;

/** `cible serve` as its own process (bin/cible.js of this checkout); resolves once it listens. */
export async function startCibleServe(options: { bin: string; env: NodeJS.ProcessEnv; cwd?: string }): Promise<RunningServe> {
  const port = await freePort();
  const child = spawn('node', [options.bin, 'serve'], {
    env: { ...options.env, PORT: String(port) },
    cwd: options.cwd,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.on('data', (chunk) => (output += chunk));
  child.stderr!.on('data', (chunk) => (output += chunk));
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  // a server that neither listens nor exits (a start-up failure that leaves it running) fails the test with its output
  const deadline = Date.now() + LISTEN_DEADLINE_MS;
  await new Promise<void>((resolve, reject) => {
    const check = () => {
      if (output.includes('listening on')) resolve();
      else if (child.exitCode !== null) reject(new Error(`cible serve exited with ${child.exitCode}: ${output}`));
      else if (Date.now() > deadline) {
        child.kill('SIGKILL');
        reject(new Error(`cible serve did not listen within ${LISTEN_DEADLINE_MS / 1000} s: ${output}`));
      } else setTimeout(check, 200);
    };
    check();
  });
  return {
    url: `http://127.0.0.1:${port}`,
    async stop() {
      if (child.exitCode === null) child.kill('SIGTERM');
      return exited;
    },
  };
}
