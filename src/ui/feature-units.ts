/**
 * The unit of each feature as the model sees it (before standardisation), after the transforms
 * of pipelines/features.ts: counts, days and amounts enter as ln(1 + x).
 */
const PERSON_UNITS: Record<string, string> = {
  has_history: 'flag (0 or 1)',
  recency_days: 'ln(1 + days)',
  tenure_days: 'ln(1 + days)',
  purchase_days: 'ln(1 + days with a purchase)',
  purchase_days_30d: 'ln(1 + days with a purchase)',
  purchase_days_90d: 'ln(1 + days with a purchase)',
  purchase_days_180d: 'ln(1 + days with a purchase)',
  purchase_days_365d: 'ln(1 + days with a purchase)',
  trend_last_vs_previous_horizon: 'difference of ln(1 + days with a purchase)',
  spend_total: 'ln(1 + currency units)',
  spend_last_horizon: 'ln(1 + currency units)',
  spend_per_purchase_day: 'ln(1 + currency units per day)',
  mean_days_between_purchases: 'ln(1 + days)',
  regularity_cv: 'ratio, 0 to 5',
  overdue_ratio: 'ratio, 0 to 10',
  distinct_products: 'ln(1 + count)',
  distinct_categories: 'ln(1 + count)',
  same_season_last_year: 'ln(1 + days with a purchase)',
  history_covers_last_year: 'flag (0 or 1)',
  bgnbd_expected_purchases: 'ln(1 + expected purchases)',
  bgnbd_probability_alive: 'probability, 0 to 1',
  orders: 'ln(1 + count)',
  lines_per_order: 'ln(1 + lines per order)',
  units_per_order: 'ln(1 + units per order)',
  mean_unit_price: 'ln(1 + currency units)',
};

const HISTORY_UNITS: Record<string, string> = {
  recency_decay: 'exp(−days since last purchase ÷ horizon), 0 to 1',
  purchase_days: 'ln(1 + days with a purchase)',
  recent_purchase_days: 'ln(1 + days with a purchase)',
  spend_share: 'share of spend, 0 to 1',
  bgnbd_expected_purchases: 'ln(1 + expected purchases)',
};

export function featureUnit(name: string): string {
  const parts = name.split(':');
  if (parts.length >= 3) return HISTORY_UNITS[parts[parts.length - 1]!] ?? 'model input';
  return PERSON_UNITS[name] ?? 'model input';
}
