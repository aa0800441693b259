import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import { serveStatic } from '@hono/node-server/serve-static';
import { swaggerUI } from '@hono/swagger-ui';
import { OpenAPIHono } from '@hono/zod-openapi';
import { bodyLimit } from 'hono/body-limit';
import { HTTPException } from 'hono/http-exception';
import { requestId } from 'hono/request-id';
import { rateLimiter } from 'hono-rate-limiter';
import { DomainError } from '../errors.ts';
import { createReviewPages } from '../ui/review.routes.tsx';
import type { ApiDependencies, AppEnv } from './api-env.ts';
import { authenticate } from './authentication.ts';
import { registerMetrics } from './metrics.ts';
import { ApiError, domainProblem, problemBody, validationError } from './problem.ts';
import { refuseDeepJson, refuseNulCharacters } from './request-guards.ts';
import { registerRoutes } from './routes/index.ts';

/** Validation problems name the part of the request as a caller knows it. */
const REQUEST_PART: Record<string, string> = {
  json: 'body',
  param: 'path',
  query: 'query',
  header: 'header',
  cookie: 'cookie',
  form: 'body',
};

const swaggerAssets = dirname(createRequire(import.meta.url).resolve('swagger-ui-dist/package.json'));

/** The HTTP API, built from its dependencies; `serve` and tests (`app.request()`) use the same app. */
export function createApp(deps: ApiDependencies): OpenAPIHono<AppEnv> {
  const { logger, config } = deps;
  const app = new OpenAPIHono<AppEnv>({
    defaultHook: (result) => {
      if (!result.success) throw validationError(REQUEST_PART[result.target] ?? result.target, result.error.issues);
    },
  });

  app.use('*', requestId());
  app.use('*', async (c, next) => {
    c.set('deps', deps);
    c.set('db', deps.database.db);
    const started = performance.now();
    await next();
    // the route pattern, never the path: paths carry contact references
    logger.info(
      {
        requestId: c.var.requestId,
        method: c.req.method,
        route: c.req.routePath,
        status: c.res.status,
        ms: Math.round(performance.now() - started),
        keyId: c.var.apiKey?.id,
      },
      'request',
    );
  });
  // the review pages answer a NUL with their own readable 400 page
  app.use('/v1/*', refuseNulCharacters(app));
  registerMetrics(app, deps);
  // lists, previews, manifests, access and portability answers and review pages carry personal
  // data: no browser, proxy or CDN may keep a copy
  for (const path of ['/v1/*', '/ui/*', '/ui']) {
    app.use(path, async (c, next) => {
      await next();
      // a response that chose its own caching (chart images: no personal data) keeps it
      if (!c.res.headers.has('Cache-Control')) c.res.headers.set('Cache-Control', 'no-store');
    });
  }

  app.use(
    '/v1/*',
    bodyLimit({
      maxSize: config.api.bodyLimitBytes,
      onError: () => {
        throw new ApiError(413, 'Payload too large', `the request body is larger than ${config.api.bodyLimitBytes} bytes`);
      },
    }),
  );
  app.use('/v1/*', async (c, next) => {
    const hasBody = ['POST', 'PUT', 'PATCH'].includes(c.req.method) && c.req.raw.body !== null && c.req.header('content-length') !== '0';
    const type = c.req.header('content-type') ?? '';
    if (hasBody && !/^application\/(merge-patch\+)?json\b/i.test(type)) {
      throw new ApiError(
        415,
        'Unsupported media type',
        `send the body as application/json (got ${type ? `"${type.split(';')[0]}"` : 'no content type'})`,
      );
    }
    await next();
  });
  app.use('/v1/*', authenticate());
  app.use('/v1/*', refuseDeepJson());
  app.use(
    '/v1/*',
    rateLimiter<AppEnv>({
      windowMs: 60_000,
      limit: config.api.rateLimitPerMinute,
      standardHeaders: 'draft-7',
      keyGenerator: (c) => `key:${c.var.apiKey.id}`,
      handler: () => {
        throw new ApiError(429, 'Too many requests', `at most ${config.api.rateLimitPerMinute} requests per minute per API key`);
      },
    }),
  );

  registerRoutes(app);

  app.openAPIRegistry.registerComponent('securitySchemes', 'apiKey', {
    type: 'http',
    scheme: 'bearer',
    description: 'an API key created by `cible keys create --role ROLE`',
  });
  app.doc31('/openapi.json', {
    openapi: '3.1.0',
    info: {
      title: 'cible',
      version: '1',
      description: 'Scored target lists on consented data only. Every /v1 route needs an API key; `x-roles` names the roles it accepts.',
    },
  });
  app.use(
    '/docs/assets/swagger-ui-dist/*',
    serveStatic({ root: swaggerAssets, rewriteRequestPath: (path) => path.replace(/^\/docs\/assets\/swagger-ui-dist/, '') }),
  );
  app.get('/docs', swaggerUI({ url: '/openapi.json', baseUrl: '/docs/assets', title: 'cible API' }));

  // the review pages beside the API: their own app, sharing the request environment and the guards above
  app.route('/ui', createReviewPages());
  app.notFound((c) => {
    const body = problemBody(
      new ApiError(404, 'Not found', `no route for ${c.req.method} ${new URL(c.req.url).pathname}`),
      c.var.requestId,
    );
    return c.json(body, 404, { 'content-type': 'application/problem+json' });
  });
  app.onError((error, c) => {
    let problem: ApiError;
    if (error instanceof ApiError) problem = error;
    else if (error instanceof DomainError) problem = domainProblem(error, { method: c.req.method, param: (name) => c.req.param(name) });
    else if (error instanceof HTTPException && error.status < 500) {
      problem = new ApiError(
        error.status as 400,
        error.status === 400 ? 'Bad request' : 'Request refused',
        error.message || 'the request was refused',
      );
    } else {
      // the message is left out: a database error can quote the values it refused (an email, a phone)
      const failure = error as Error & { code?: string };
      const frames = (failure.stack ?? '').split('\n').slice(1).join('\n');
      logger.error(
        { requestId: c.var.requestId, route: c.req.routePath, err: { type: failure.name, code: failure.code, frames } },
        'request failed',
      );
      problem = new ApiError(500, 'Internal server error', `the request failed; quote request id ${c.var.requestId} when reporting it`);
    }
    return c.json(problemBody(problem, c.var.requestId), problem.status, { 'content-type': 'application/problem+json' });
  });
  return app;
}
