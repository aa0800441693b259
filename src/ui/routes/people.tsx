import { idFrom } from '../paths.ts';
import { PersonLookupPage } from '../person.page.tsx';
import { personIdByExternalId } from '../person.repository.ts';
import type { UiApp, UiRouteDeps } from '../ui-env.tsx';
import { viewerOf } from '../ui-env.tsx';

/** GET and POST /ui/people, GET /ui/people/by-id: finding a person by external or internal id. */
export function registerPersonLookup(ui: UiApp, { reviewers }: UiRouteDeps): void {
  ui.get('/people', reviewers, (c) => c.html(<PersonLookupPage viewer={viewerOf(c)!} />));

  ui.post('/people', reviewers, async (c) => {
    const body = await c.req.parseBody();
    const externalId = typeof body.external_id === 'string' ? body.external_id.trim() : '';
    if (externalId.length === 0 || externalId.length > 200) {
      return c.html(<PersonLookupPage viewer={viewerOf(c)!} error="Type an external id (at most 200 characters)." />, 400);
    }
    const id = await personIdByExternalId(c.var.db, externalId);
    // the id typed is not repeated back: it stays in the request body
    if (id === null)
      return c.html(<PersonLookupPage viewer={viewerOf(c)!} error="No contact has this external id (or the contact was erased)." />, 404);
    return c.redirect(`/ui/people/${id}`, 303);
  });

  ui.get('/people/by-id', reviewers, (c) => {
    const id = idFrom(c.req.query('id')?.trim());
    if (id === null)
      return c.html(<PersonLookupPage viewer={viewerOf(c)!} error="An internal id is a positive whole number, such as 1234." />, 400);
    return c.redirect(`/ui/people/${id}`, 303);
  });
}
