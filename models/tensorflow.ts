import { createRequire } from 'node:module';
import path from 'node:path';
import type * as TF from '@tensorflow/tfjs';

export type BackendName = 'tensorflow' | 'wasm' | 'cpu';

export interface Tensorflow {
  tf: typeof TF;
  backend: BackendName;
}

export interface LoadTensorflowOptions {
  prefer?: BackendName | 'auto';
  logger?: { info(obj: object, msg: string): void };
}

const BACKENDS: readonly BackendName[] = ['tensorflow', 'wasm', 'cpu'];

// Without the native binding, auto picks wasm: test/bench/tfjs-backends.bench.ts measured it 5–20× faster
// than cpu on every job; train mlp + predict 1M rows + explain 1M rows took ~50 s against ~665 s.
const AUTO_FALLBACK: BackendName = 'wasm';

// tfjs keeps its backend in a process-wide engine, so one load per process is all there can be.
let loading: Promise<Tensorflow> | undefined;

/**
 * Loads TensorFlow.js on one backend for the whole process. `auto` (the default) uses the native
 * binding (optional dependency `tfjs-node-native`) when it loads, else wasm, else cpu. Later calls
 * return the same library; asking for another explicit backend than the one loaded throws.
 */
export async function loadTensorflow(options: LoadTensorflowOptions = {}): Promise<Tensorflow> {
  const prefer = options.prefer ?? 'auto';
  if (prefer !== 'auto' && !BACKENDS.includes(prefer)) {
    throw new Error(`unknown TensorFlow.js backend '${String(prefer)}'; expected auto, ${BACKENDS.join(', ')}`);
  }
  if (!loading) {
    const attempt = load(prefer, options.logger);
    loading = attempt;
    attempt.catch(() => {
      if (loading === attempt) loading = undefined;
    });
  }
  const loaded = await loading;
  if (prefer !== 'auto' && prefer !== loaded.backend) {
    throw new Error(`TensorFlow.js already runs on the '${loaded.backend}' backend in this process; it cannot also use '${prefer}'`);
  }
  return loaded;
}

async function load(prefer: BackendName | 'auto', logger: LoadTensorflowOptions['logger']): Promise<Tensorflow> {
  const tf = await import('@tensorflow/tfjs');
  // The cpu backend prints its "install our node backend" banner through tfjs' warn() on its first
  // tensor write, not on import; PROD mode silences warn() and tfjs' log(), which would write to stdout.
  tf.enableProdMode();

  const candidates: BackendName[] = [];
  if (prefer === 'tensorflow' || prefer === 'auto') {
    const failure = await loadNative(tf);
    if (failure === undefined) candidates.push('tensorflow');
    else if (prefer === 'tensorflow') {
      throw new Error(`the native TensorFlow backend (optional dependency tfjs-node-native) is unavailable: ${failure}`);
    } else candidates.push(AUTO_FALLBACK, 'cpu');
  } else candidates.push(prefer);

  let backend: BackendName | undefined;
  const failures: string[] = [];
  for (const candidate of candidates) {
    try {
      if (candidate === 'wasm') await prepareWasm();
      // setBackend resolves false (tfjs only warns) when the backend fails to initialise
      if (await tf.setBackend(candidate)) {
        backend = candidate;
        break;
      }
      failures.push(`${candidate}: initialisation failed`);
    } catch (error) {
      failures.push(`${candidate}: ${error instanceof Error ? error.message : String(error)}`);
    }
  }
  if (backend === undefined) throw new Error(`TensorFlow.js could not load a backend (${failures.join('; ')})`);
  await tf.ready();
  logger?.info(failures.length > 0 ? { backend, failures } : { backend }, 'tensorflow backend loaded');
  return { tf, backend };
}

/** Returns why the native binding cannot be used, or undefined once its backend is registered. */
async function loadNative(tf: typeof TF): Promise<string | undefined> {
  try {
    await import('tfjs-node-native');
  } catch (error) {
    return error instanceof Error ? error.message : String(error);
  }
  // A binding resolved against another copy of tfjs-core would register its backend there, not here.
  return tf.findBackendFactory('tensorflow') ? undefined : 'it registered no tensorflow backend with this @tensorflow/tfjs';
}

async function prepareWasm(): Promise<void> {
  const wasm = await import('@tensorflow/tfjs-backend-wasm');
  const require = createRequire(import.meta.url);
  // Resolved from this file, not the working directory, so the CLI works from anywhere.
  const binary = require.resolve('@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm');
  wasm.setWasmPaths(path.dirname(binary) + path.sep);
}
