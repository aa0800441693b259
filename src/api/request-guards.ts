import type { OpenAPIHono } from '@hono/zod-openapi';
import { createMiddleware } from 'hono/factory';
import type { AppEnv } from './api-env.ts';
import { ApiError } from './problem.ts';

const NUL_PROBLEM = 'holds a NUL character (%00), which no value may hold';

interface RouteTemplate {
  pattern: RegExp;
  names: string[];
}

/** The documented routes as patterns over the raw path, to name the path parameter that holds a NUL. */
function routeTemplates(app: OpenAPIHono<AppEnv>): RouteTemplate[] {
  const templates: RouteTemplate[] = [];
  for (const definition of app.openAPIRegistry.definitions) {
    if (definition.type !== 'route') continue;
    const names: string[] = [];
    const source = definition.route.path
      .split(/(\{[^}]+\})/)
      .map((part) => {
        const name = /^\{([^}]+)\}$/.exec(part)?.[1];
        if (!name) return part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
        names.push(name);
        return '([^/]+)';
      })
      .join('');
    templates.push({ pattern: new RegExp(`^${source}$`), names });
  }
  return templates;
}

function decoded(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

/**
 * 400 when a path segment or a query parameter holds a NUL character: no database text can hold
 * one, and refusing it here, for every route, keeps it from reaching a query as a 500.
 */
export function refuseNulCharacters(app: OpenAPIHono<AppEnv>) {
  let templates: RouteTemplate[] | undefined;
  return createMiddleware<AppEnv>(async (c, next) => {
    const url = new URL(c.req.url);
    const errors: Array<{ where: string; problem: string }> = [];
    if (decoded(url.pathname).includes('\0')) {
      templates ??= routeTemplates(app);
      const route = templates.map((template) => ({ template, match: template.pattern.exec(url.pathname) })).find(({ match }) => match);
      const named = route ? route.template.names.filter((_, index) => decoded(route.match![index + 1]!).includes('\0')) : [];
      if (named.length === 0) errors.push({ where: 'path', problem: NUL_PROBLEM });
      for (const name of named) errors.push({ where: `path.${name}`, problem: NUL_PROBLEM });
    }
    if (url.search.length > 0) {
      for (const [name, value] of url.searchParams) {
        if (name.includes('\0') || value.includes('\0'))
          errors.push({ where: `query.${name.replaceAll('\0', '%00')}`, problem: NUL_PROBLEM });
      }
    }
    if (errors.length > 0) throw new ApiError(400, 'Bad request', errors.map((e) => `${e.where}: ${e.problem}`).join('; '), errors);
    await next();
  });
}

/** Bodies nested deeper than this are refused before they are parsed: no request of the API nests beyond a few levels. */
export const MAX_JSON_DEPTH = 32;

/** The deepest nesting of arrays and objects in a JSON text (strings skipped), stopping once past `limit`. */
export function jsonDepthExceeds(text: string, limit: number): boolean {
  let depth = 0;
  let inString = false;
  for (let index = 0; index < text.length; index += 1) {
    const code = text.charCodeAt(index);
    if (inString) {
      if (code === 0x5c)
        index += 1; // a backslash escapes the next character
      else if (code === 0x22) inString = false;
    } else if (code === 0x22) inString = true;
    else if (code === 0x5b || code === 0x7b) {
      depth += 1;
      if (depth > limit) return true;
    } else if (code === 0x5d || code === 0x7d) depth -= 1;
  }
  return false;
}

/** 400 for a JSON body nested deeper than MAX_JSON_DEPTH, checked in one pass before any parser recurses into it. */
export function refuseDeepJson() {
  return createMiddleware<AppEnv>(async (c, next) => {
    if (/\bjson\b/i.test(c.req.header('content-type') ?? '') && c.req.raw.body !== null) {
      // read once: the route's validator parses the same cached text
      const text = await c.req.text();
      if (jsonDepthExceeds(text, MAX_JSON_DEPTH)) {
        throw new ApiError(400, 'Bad request', `body: the JSON is nested deeper than ${MAX_JSON_DEPTH} levels`, [
          { where: 'body', problem: `nested deeper than ${MAX_JSON_DEPTH} levels` },
        ]);
      }
    }
    await next();
  });
}
