import { endTime, startTime } from 'hono/timing';
import { appendAuditLog } from '../../audit/audit-log.repository.ts';
import { apiKeyActor } from '../../auth/actor.ts';
import { liveScoresOf } from '../../rights/access.repository.ts';
import { idFrom } from '../paths.ts';
import { PersonPage } from '../person.page.tsx';
import { findPerson, livePopulations } from '../person.repository.ts';
import { errorPage, type UiApp, type UiRouteDeps, viewerOf } from '../ui-env.tsx';

/** GET /ui/people/:contactId: one person's live scores and their reasons (an access, audited). */
export function registerPersonPage(ui: UiApp, { reviewers }: UiRouteDeps): void {
  ui.get('/people/:contactId', reviewers, async (c) => {
    const id = idFrom(c.req.param('contactId'));
    if (id === null)
      return errorPage(c, 400, 'Not a person id', 'A person is opened by their internal id, a positive whole number such as 1234.');
    startTime(c, 'db', 'database');
    const person = await findPerson(c.var.db, id, c.var.deps.clock.now());
    if (!person) return errorPage(c, 404, 'No such person', `No contact has the internal id ${id}.`);
    const scores = person.erasedAt ? [] : await liveScoresOf(c.var.db, person.id);
    const populations = await livePopulations(
      c.var.db,
      scores.map((score) => score.modelId),
    );
    // reading why one person got their score is an access to their data: it is accounted for
    const viewer = c.get('viewer');
    await appendAuditLog(c.var.db, {
      at: c.var.deps.clock.now(),
      actor: apiKeyActor(viewer),
      action: 'ui.person_scores_viewed',
      subjectType: 'person',
      subjectId: String(person.id),
      requestId: c.var.requestId,
      details: { models: scores.length },
    });
    endTime(c, 'db');
    return c.html(<PersonPage viewer={viewerOf(c)!} person={person} scores={scores} populations={populations} />);
  });
}
