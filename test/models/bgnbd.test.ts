import { test } from 'vitest';
import * as m from 'fmin';
test('x', () => { console.log('ns', Object.keys(m), typeof (globalThis as any).fmin); 
  const f = (globalThis as any).fmin ?? m;
  try { const r = f.nelderMead((x: number[]) => Math.abs(x[0]!) + Math.abs(x[1]!-1), [3, 4]); console.log(r); } catch (e) { console.log('ERR', e); }
});
