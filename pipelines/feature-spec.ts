/**
 * The declared feature allowlist: every column a model may see, and nothing else.
 * Data minimisation (GDPR art. 5(1)(c)): features describe buying behaviour only;
 * no identity, contact detail, or special-category data (art. 9) ever enters a matrix.
 */

/** Per-person features, in column order. */
export const PERSON_FEATURES = [
  'has_history',
  'recency_days',
  'tenure_days',
  'purchase_days',
  'purchase_days_30d',
  'purchase_days_90d',
  'purchase_days_180d',
  'purchase_days_365d',
  'trend_last_vs_previous_horizon',
  'spend_total',
  'spend_last_horizon',
  'spend_per_purchase_day',
  'mean_days_between_purchases',
  'regularity_cv',
  'overdue_ratio',
  'distinct_products',
  'distinct_categories',
  'same_season_last_year',
  'history_covers_last_year',
  'bgnbd_expected_purchases',
  'bgnbd_probability_alive',
  'orders',
  'lines_per_order',
  'units_per_order',
  'mean_unit_price',
] as const;

/** Features repeated for each category and for each target product. */
export const HISTORY_FEATURES = [
  'recency_decay',
  'purchase_days',
  'recent_purchase_days',
  'spend_share',
  'bgnbd_expected_purchases',
] as const;

export type PersonFeature = (typeof PERSON_FEATURES)[number];

/** Explanation groups: the per-person reasons name these, never a raw column. */
export const EXPLANATION_GROUPS: Record<string, readonly string[]> = {
  recency: ['has_history', 'recency_days', 'overdue_ratio'],
  frequency: ['orders', 'purchase_days', 'purchase_days_30d', 'purchase_days_90d', 'purchase_days_180d', 'purchase_days_365d'],
  trend: ['trend_last_vs_previous_horizon'],
  spend: ['spend_total', 'spend_last_horizon', 'spend_per_purchase_day'],
  tenure: ['tenure_days'],
  regularity: ['mean_days_between_purchases', 'regularity_cv'],
  breadth: ['distinct_products', 'distinct_categories', 'lines_per_order'],
  basket: ['units_per_order', 'mean_unit_price'],
  seasonality: ['same_season_last_year', 'history_covers_last_year'],
  'buy-till-you-die': ['bgnbd_expected_purchases', 'bgnbd_probability_alive'],
};

/**
 * Product categories whose purchases reveal special-category data (health, beliefs, sex
 * life...). Their purchases are left out of every feature and they are never a target.
 */
export const DEFAULT_SPECIAL_CATEGORIES = [
  'health',
  'medical',
  'pharmacy',
  'medicine',
  'religion',
  'religious',
  'political',
  'politics',
  'ethnicity',
  'sexuality',
  'sexual health',
  'adult',
  'biometric',
  'genetic',
  'trade union',
];

const SPECIAL_CATEGORY_WORDS = /health|medic|pharma|relig|politic|ethnic|racial|sexual|biometric|genetic|union|belief/i;

export class FeatureNotAllowedError extends Error {}

/** Refuses any column outside the allowlist, and anything that names special-category data. */
export function assertAllowedFeatures(names: readonly string[]): void {
  for (const name of names) {
    const [scope, , feature] = name.split(':');
    const allowed =
      (PERSON_FEATURES as readonly string[]).includes(name) ||
      ((scope === 'category' || scope === 'product') && (HISTORY_FEATURES as readonly string[]).includes(feature ?? ''));
    if (!allowed) throw new FeatureNotAllowedError(`feature "${name}" is not in the declared allowlist`);
    if (scope === 'category' && SPECIAL_CATEGORY_WORDS.test(name.split(':')[1] ?? '')) {
      throw new FeatureNotAllowedError(`feature "${name}" describes a special category of data (GDPR art. 9)`);
    }
  }
}

export function isSpecialCategory(category: string, specialCategories: readonly string[]): boolean {
  const normalized = category.trim().toLowerCase();
  return specialCategories.includes(normalized) || SPECIAL_CATEGORY_WORDS.test(normalized);
}
