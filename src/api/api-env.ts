/*
 * The API's names for what the HTTP server is built from (src/http/http-env.ts): the API and
 * the review pages share one request environment.
 */
export type { HttpDependencies as ApiDependencies, HttpEnv as AppEnv } from '../http/http-env.ts';
export type { PipelineLauncher } from '../registry/pipeline-launcher.ts';
export { PipelineBusyError } from '../registry/pipeline-launcher.ts';
