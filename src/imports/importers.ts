import { productImporter } from '../catalog/product.import.ts';
import { consentImporter } from '../consent/consent.import.ts';
import { contactImporter } from '../contacts/contact.import.ts';
import { purchaseImporter } from '../purchases/purchase.import.ts';
import type { ImporterDefinition, ImportKind } from './importer.ts';

export const IMPORTERS: Record<ImportKind, ImporterDefinition> = {
  contacts: contactImporter,
  consents: consentImporter,
  products: productImporter,
  purchases: purchaseImporter,
};
