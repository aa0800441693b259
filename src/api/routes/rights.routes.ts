import type { OpenAPIHono } from '@hono/zod-openapi';
import type { AppEnv } from '../api-env.ts';
import { registerRecordConsents } from './consents.post.ts';
import { registerEraseContact } from './contacts.delete.ts';
import { registerExportContact } from './contacts.export.get.ts';
import { registerObjectToContact } from './contacts.objections.post.ts';
import { registerRectifyContact } from './contacts.patch.ts';

/** The DPO's routes: recording consents, and the data-subject rights (GDPR art. 15 to 21). */
export function registerRightsRoutes(app: OpenAPIHono<AppEnv>): void {
  registerRecordConsents(app);
  registerExportContact(app);
  registerRectifyContact(app);
  registerObjectToContact(app);
  registerEraseContact(app);
}
