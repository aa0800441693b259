import type { FC } from 'hono/jsx';
import { Layout } from './layout.tsx';

export const LoginPage: FC<{ next: string; error?: string }> = ({ next, error }) => (
  <Layout title="Sign in" viewer={null}>
    <h1>Sign in</h1>
    <p class="lead">The review pages use the same API keys and roles as the API: model pages need a data scientist or DPO key.</p>
    {error ? (
      <div class="notice error" role="alert">
        {error}
      </div>
    ) : null}
    <form class="card" method="post" action="/ui/login">
      <input type="hidden" name="next" value={next} />
      <label for="key">API key</label>
      <input id="key" name="key" type="password" autocomplete="off" required spellcheck={false} placeholder="cible_…" />
      <p class="hint">
        The key is not kept: a session id is, in a cookie readable by this site only (HttpOnly, SameSite=Strict), until you sign out or for
        8 hours.
      </p>
      <button type="submit">Sign in</button>
    </form>
  </Layout>
);
