import type { FC } from 'hono/jsx';
import type { LiveScoreRow } from '../rights/access.repository.ts';
import * as f from './format.ts';
import { Layout, type Viewer } from './layout.tsx';
import { modelPath } from './paths.ts';
import type { PersonRecord } from './person.repository.ts';

const LookupForms: FC<{ error?: string }> = ({ error }) => (
  <>
    {error ? (
      <div class="notice error" role="alert">
        {error}
      </div>
    ) : null}
    <div class="charts">
      <form class="card" method="get" action="/ui/people/by-id">
        <label for="id">Internal id</label>
        <input id="id" name="id" type="text" inputmode="numeric" autocomplete="off" required placeholder="e.g. 1234" />
        <p class="hint">The id shown on a model page, in an export manifest or an access report.</p>
        <button type="submit">Open</button>
      </form>
      <form class="card" method="post" action="/ui/people">
        <label for="external_id">External id</label>
        <input
          id="external_id"
          name="external_id"
          type="text"
          autocomplete="off"
          required
          spellcheck={false}
          placeholder="the company's own identifier"
        />
        <p class="hint">Sent in the request body, so that it stays out of addresses and logs.</p>
        <button type="submit">Find</button>
      </form>
    </div>
  </>
);

export const PersonLookupPage: FC<{ viewer: Viewer; error?: string }> = ({ viewer, error }) => (
  <Layout title="Person lookup" viewer={viewer} active="people">
    <h1>Why did a person get their score?</h1>
    <p class="lead">One person at a time: their live scores and the reasons behind them. Contact details are never shown.</p>
    <LookupForms error={error} />
  </Layout>
);

function odds(contribution: number): string {
  const factor = Math.exp(contribution);
  return `×${factor >= 10 ? factor.toFixed(0) : factor.toFixed(2)}`;
}

function targetName(score: LiveScoreRow): string {
  if (score.targetKind === 'any') return 'any purchase';
  if (score.targetKind === 'category') return `category ${score.targetKey}`;
  return score.targetKey;
}

/** One person's live scores with their top contributions: no contact detail, no other person. */
export const PersonPage: FC<{ viewer: Viewer; person: PersonRecord; scores: LiveScoreRow[]; populations: Map<number, number> }> = ({
  viewer,
  person,
  scores,
  populations,
}) => (
  <Layout title={`Person #${person.id}`} viewer={viewer} active="people">
    <p class="hint">
      <a href="/ui/people">Person lookup</a> › #{person.id}
    </p>
    <h1>Person #{person.id}</h1>
    <dl class="facts" id="person">
      <dt>internal id</dt>
      <dd>{person.id}</dd>
      <dt>external id</dt>
      <dd>{person.externalId ?? 'none (erased)'}</dd>
      <dt>in the base since</dt>
      <dd>{f.dateTime(person.createdAt)}</dd>
      <dt>profiling consent</dt>
      <dd>
        {person.erasedAt
          ? `erased ${f.dateTime(person.erasedAt)}`
          : person.profilingConsent
            ? 'valid now: may be scored'
            : 'not valid now: not scored, and any score was deleted'}
      </dd>
    </dl>
    <h2>Live scores and why</h2>
    {scores.length === 0 ? (
      <div class="notice">
        No live score for this person{person.profilingConsent ? ' (not in the population of the latest scoring, or no model is live)' : ''}.
      </div>
    ) : (
      <>
        <p class="hint">
          A reason is a feature group; its contribution is how much the group raises the log-odds of buying compared with the group at the
          population's average (occlusion on the scoring network): +0.69 log-odds doubles the odds. Up to three reasons that raise the score
          are kept per model.
        </p>
        <table id="scores">
          <thead>
            <tr>
              <th scope="col">model</th>
              <th class="num" scope="col">
                probability of buying (%)
              </th>
              <th class="num" scope="col">
                rank (1 = highest)
              </th>
              <th class="num" scope="col">
                percentile (0–100, 100 = highest)
              </th>
              <th scope="col">top contributions (log-odds, odds factor)</th>
              <th scope="col">scored (UTC)</th>
            </tr>
          </thead>
          <tbody>
            {scores.map((score) => (
              <tr data-model={String(score.modelId)}>
                <td>
                  <a href={modelPath({ kind: score.targetKind as 'product', key: score.targetKey })}>{targetName(score)}</a>
                  <div class="muted">
                    v{score.modelVersion} ({score.algorithm}), horizon {f.count(score.horizonDays)} days
                  </div>
                </td>
                <td class="num">{f.percent(score.score, 2)}</td>
                <td class="num">
                  {f.count(score.rank)}
                  {populations.has(score.modelId) ? ` of ${f.count(populations.get(score.modelId))}` : ''}
                </td>
                <td class="num">{f.decimal(score.percentile, 1)}</td>
                <td>
                  {score.reasons && score.reasons.length > 0 ? (
                    <ol class="reasons">
                      {score.reasons.map((reason) => (
                        <li>
                          <strong>{reason.feature ?? 'unknown group'}</strong>: {reason.contribution >= 0 ? '+' : '−'}
                          {Math.abs(reason.contribution).toFixed(2)} log-odds ({odds(reason.contribution)} odds)
                        </li>
                      ))}
                    </ol>
                  ) : (
                    <span class="muted">no feature group raises this score above the average</span>
                  )}
                </td>
                <td>{f.dateTime(score.scoredAt)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </>
    )}
    <h2>Another person</h2>
    <LookupForms />
  </Layout>
);
