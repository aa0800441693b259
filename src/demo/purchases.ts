import type { Catalog } from './catalog.ts';
import type { Rng } from './random.ts';
import { YEAR } from './time.ts';

/** Latent traits of a customer: the hidden truth the propensity models must recover. */
export interface BuyerTraits {
  /** orders per year while active (gamma: many light buyers, a few heavy ones) */
  ordersPerYear: number;
  /** probability of dropping out for good after each order (BG/NBD) */
  dropout: number;
  /** share of demand per category (Dirichlet: one or two favourites) */
  affinity: Float64Array;
  /** probability that a line re-buys a product already bought in that category */
  rebuy: number;
}

export interface BasketLine {
  product: number;
  quantity: number;
  unitPrice: string;
}

const PROSPECT_SHARE = 0.27;
const ORDER_RATE_SHAPE = 0.8;
const MEAN_ORDERS_PER_YEAR = 16;
const AFFINITY_CONCENTRATION = 1.2;
const AFFINITY_EXPLORATION = 0.04;
const LINES_PER_ORDER = [0.5, 0.27, 0.14, 0.06, 0.03];
const QUANTITY = [0.82, 0.13, 0.04, 0.01];
/** UTC hour-of-day profile of online orders */
const HOUR_WEIGHTS = [0.3, 0.2, 0.1, 0.1, 0.1, 0.2, 0.5, 1, 1.5, 2, 2.2, 2.5, 3, 2.8, 2.3, 2.2, 2.3, 2.6, 3, 3.4, 3.6, 3.2, 2.2, 1];
/** January and July sales, Black Friday in November */
const PROMO_CHANCE_BY_MONTH = [0.2, 0.05, 0.05, 0.05, 0.05, 0.05, 0.2, 0.05, 0.05, 0.05, 0.2, 0.05];

/** Null for a prospect, who never buys. */
export function drawBuyerTraits(rng: Rng, catalog: Catalog): BuyerTraits | null {
  if (rng.chance(PROSPECT_SHARE)) return null;
  const popularity = catalog.categories.map((c) => c.popularity);
  const total = popularity.reduce((sum, p) => sum + p, 0);
  const prior = popularity.map((p) => p / total);
  const favourites = rng.dirichlet(prior.map((p) => p * AFFINITY_CONCENTRATION));
  return {
    ordersPerYear: rng.gamma(ORDER_RATE_SHAPE, MEAN_ORDERS_PER_YEAR / ORDER_RATE_SHAPE),
    dropout: rng.beta(1, 14),
    affinity: favourites.map((f, c) => (1 - AFFINITY_EXPLORATION) * f + AFFINITY_EXPLORATION * (prior[c] as number)),
    rebuy: rng.beta(2, 3),
  };
}

/**
 * Simulates one customer's orders over [start, end): a Poisson process whose
 * monthly intensity follows the seasonality of the customer's favourite
 * categories (drawn by thinning), stopped for good by BG/NBD dropout.
 */
export class PurchaseSimulator {
  private readonly boughtCount: Int32Array;
  private readonly categoryWeights: Float64Array;

  constructor(
    private readonly catalog: Catalog,
    private readonly rng: Rng,
  ) {
    this.boughtCount = new Int32Array(catalog.products.length);
    this.categoryWeights = new Float64Array(catalog.categories.length);
  }

  simulate(traits: BuyerTraits, start: number, end: number, emit: (at: number, lines: BasketLine[]) => void): void {
    const intensity = this.monthlyIntensity(traits.affinity);
    const peak = Math.max(...intensity);
    const candidateRate = (traits.ordersPerYear * peak) / YEAR;
    this.boughtCount.fill(0);
    for (let t = start + this.rng.exponential(candidateRate); t < end; t += this.rng.exponential(candidateRate)) {
      const month = new Date(t).getUTCMonth();
      if (this.rng.float() * peak >= (intensity[month] as number)) continue;
      emit(this.shoppingTime(t, start, end), this.basket(traits, month));
      if (this.rng.chance(traits.dropout)) return;
    }
  }

  private monthlyIntensity(affinity: Float64Array): Float64Array {
    const intensity = new Float64Array(12);
    this.catalog.categories.forEach((category, c) => {
      for (let month = 0; month < 12; month++) {
        intensity[month] = (intensity[month] as number) + (affinity[c] as number) * (category.season[month] as number);
      }
    });
    return intensity;
  }

  /** Moves the order to a plausible hour of the same day, if that stays inside the window. */
  private shoppingTime(t: number, start: number, end: number): number {
    const dayStart = t - (t % 86_400_000);
    const at = dayStart + this.rng.weightedIndex(HOUR_WEIGHTS) * 3_600_000 + this.rng.int(3600) * 1000;
    return at > start && at < end ? at : Math.floor(t / 1000) * 1000;
  }

  private basket(traits: BuyerTraits, month: number): BasketLine[] {
    const lines: BasketLine[] = [];
    const size = this.rng.weightedIndex(LINES_PER_ORDER) + 1;
    for (let i = 0; i < size; i++) {
      const product = this.pickProduct(traits, month);
      const quantity = this.rng.weightedIndex(QUANTITY) + 1;
      const existing = lines.find((line) => line.product === product);
      if (existing) existing.quantity += quantity;
      else lines.push({ product, quantity, unitPrice: this.unitPrice(product, month) });
    }
    return lines;
  }

  private pickProduct(traits: BuyerTraits, month: number): number {
    const categories = this.catalog.categories;
    for (let c = 0; c < categories.length; c++) {
      this.categoryWeights[c] = (traits.affinity[c] as number) * (categories[c]?.season[month] as number);
    }
    const category = this.rng.weightedIndex(this.categoryWeights);
    const members = this.catalog.byCategory[category] as readonly number[];
    const product = this.rng.chance(traits.rebuy) ? this.pickRebuy(members) : -1;
    const chosen = product >= 0 ? product : (members[this.rng.cumulativeIndex(this.catalog.zipf[category] as Float64Array)] as number);
    this.boughtCount[chosen] = (this.boughtCount[chosen] as number) + 1;
    return chosen;
  }

  /** A product of this category already bought, weighted by how often; -1 if none. */
  private pickRebuy(members: readonly number[]): number {
    const counts = members.map((p) => this.boughtCount[p] as number);
    return counts.some((n) => n > 0) ? (members[this.rng.weightedIndex(counts)] as number) : -1;
  }

  private unitPrice(product: number, month: number): string {
    const base = this.catalog.products[product]?.basePrice as number;
    const noise = 1 + this.rng.between(-0.04, 0.04);
    const promo = this.rng.chance(PROMO_CHANCE_BY_MONTH[month] as number) ? this.rng.between(0.7, 0.9) : 1;
    return Math.max(0.5, base * noise * promo).toFixed(2);
  }
}
