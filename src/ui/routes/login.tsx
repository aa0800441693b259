import type { Context } from 'hono';
import { findActiveKey } from '../../auth/api-key.repository.ts';
import type { HttpEnv } from '../../http/http-env.ts';
import { LoginPage } from '../login.page.tsx';
import { safeNext } from '../paths.ts';
import { endSession, startSession } from '../session.ts';
import type { UiApp } from '../ui-env.tsx';

/** GET and POST /ui/login, POST /ui/logout: signing in with an API key, and out. */
export function registerLogin(ui: UiApp): void {
  ui.get('/login', (c) => c.html(<LoginPage next={safeNext(c.req.query('next'))} />));

  ui.post('/login', async (c) => {
    const body = await c.req.parseBody();
    const next = safeNext(body.next);
    const key = typeof body.key === 'string' ? body.key.trim() : '';
    const identity = key ? await findActiveKey(c.var.db, key) : null;
    if (!identity) return c.html(<LoginPage next={next} error="This API key is unknown or revoked." />, 401);
    await startSession(c as unknown as Context<HttpEnv>, identity);
    return c.redirect(next, 303);
  });

  ui.post('/logout', async (c) => {
    await endSession(c as unknown as Context<HttpEnv>);
    return c.redirect('/ui/login', 303);
  });
}
