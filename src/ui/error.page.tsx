import type { FC } from 'hono/jsx';
import { Layout, type Viewer } from './layout.tsx';

/** A readable page for a refusal or a failure: what happened and what to do, never internal text. */
export const ErrorPage: FC<{
  status: number;
  title: string;
  message: string;
  viewer: Viewer | null;
  requestId?: string;
  links?: Array<{ href: string; label: string }>;
}> = ({ status, title, message, viewer, requestId, links }) => (
  <Layout title={title} viewer={viewer}>
    <h1>{title}</h1>
    <div class={`notice ${status >= 500 ? 'error' : 'warn'}`} role="alert" data-status={String(status)}>
      <p>{message}</p>
      {requestId ? (
        <p class="hint">
          HTTP status {status}; request id {requestId} (quote it when reporting a problem).
        </p>
      ) : (
        <p class="hint">HTTP status {status}.</p>
      )}
    </div>
    <p>
      {(links ?? [{ href: '/ui/models', label: 'Back to the models overview' }]).map((link) => (
        <>
          <a href={link.href}>{link.label}</a>{' '}
        </>
      ))}
    </p>
  </Layout>
);
