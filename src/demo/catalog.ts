import type { Rng } from './random.ts';

export interface Category {
  code: string;
  skuPrefix: string;
  /** share of overall demand, drives the category-affinity prior */
  popularity: number;
  /** demand multiplier per month (Jan..Dec), mean 1 */
  season: readonly number[];
  priceRange: readonly [number, number];
  names: readonly string[];
}

export interface Product {
  sku: string;
  name: string;
  category: number;
  basePrice: number;
}

export interface Catalog {
  categories: readonly Category[];
  products: readonly Product[];
  /** product indices of each category, most popular first */
  byCategory: readonly (readonly number[])[];
  /** cumulative Zipf weights over byCategory[c] */
  zipf: readonly Float64Array[];
}

const ZIPF_EXPONENT = 1.1;

function normalised(monthly: readonly number[]): number[] {
  const mean = monthly.reduce((sum, x) => sum + x, 0) / monthly.length;
  return monthly.map((x) => x / mean);
}

const CATEGORIES: readonly Category[] = [
  {
    code: 'garden',
    skuPrefix: 'GAR',
    popularity: 0.14,
    season: normalised([0.3, 0.45, 1.0, 1.9, 2.2, 1.8, 1.2, 0.8, 0.7, 0.5, 0.3, 0.4]),
    priceRange: [6, 180],
    names: [
      'Pruning shears',
      'Garden hose 25 m',
      'Terracotta pot',
      'Lawn seed 1 kg',
      'Watering can',
      'Garden gloves',
      'Bird feeder',
      'Solar lantern',
      'Compost bin',
      'Hedge trimmer',
    ],
  },
  {
    code: 'kitchen',
    skuPrefix: 'KIT',
    popularity: 0.2,
    season: normalised([0.9, 0.8, 0.9, 0.9, 1.0, 0.9, 0.8, 0.8, 1.0, 1.0, 1.3, 1.8]),
    priceRange: [8, 250],
    names: [
      "Chef's knife",
      'Cast-iron casserole',
      'Espresso cups, set of 4',
      'Non-stick frying pan',
      'Chopping board',
      'Electric kettle',
      'Spice rack',
      'Stand mixer',
      'Salad spinner',
      'Coffee grinder',
    ],
  },
  {
    code: 'kids',
    skuPrefix: 'KID',
    popularity: 0.15,
    season: normalised([0.6, 0.6, 0.7, 0.7, 0.7, 0.7, 0.7, 1.0, 1.1, 0.9, 1.9, 3.0]),
    priceRange: [7, 120],
    names: [
      'Building blocks',
      'Plush bear',
      'Wooden puzzle',
      'Board game "Jungle"',
      'Balance bike',
      'Colouring kit',
      'Doll house',
      'Remote-control car',
      'Picture book set',
      'Kick scooter',
    ],
  },
  {
    code: 'sport',
    skuPrefix: 'SPO',
    popularity: 0.16,
    season: normalised([2.1, 1.3, 1.0, 0.9, 1.0, 1.0, 0.8, 0.7, 1.7, 1.0, 0.7, 0.7]),
    priceRange: [6, 160],
    names: [
      'Yoga mat',
      'Running shoes',
      'Dumbbells 2 x 5 kg',
      'Resistance bands',
      'Water bottle',
      'Tennis racket',
      'Cycling helmet',
      'Football',
      'Swim goggles',
      'Skipping rope',
    ],
  },
  {
    code: 'beauty',
    skuPrefix: 'BEA',
    popularity: 0.17,
    season: normalised([0.9, 1.25, 0.9, 0.9, 1.2, 1.0, 0.9, 0.8, 0.9, 0.9, 1.1, 1.9]),
    priceRange: [4, 90],
    names: [
      'Moisturising cream',
      'Lip balm',
      'Shampoo 250 ml',
      'Eau de toilette',
      'Face serum',
      'Hand cream',
      'Nail polish',
      'Sunscreen SPF 50',
      'Shower gel',
      'Make-up brush set',
    ],
  },
  {
    code: 'books',
    skuPrefix: 'BOO',
    popularity: 0.18,
    season: normalised([0.9, 0.8, 0.8, 0.8, 0.8, 1.0, 1.4, 1.3, 1.0, 0.9, 1.0, 1.7]),
    priceRange: [5, 45],
    names: [
      'Crime novel',
      'Cookbook',
      'Travel guide',
      'Comic album',
      "Children's storybook",
      'Biography',
      'Science-fiction novel',
      'Gardening handbook',
      'Self-help book',
      'Poetry collection',
    ],
  },
];

/** A retail-looking price: log-uniform in the category range, ending in .99 or .90. */
function basePrice(range: readonly [number, number], rng: Rng): number {
  const [min, max] = range;
  const raw = Math.exp(rng.between(Math.log(min), Math.log(max)));
  return Math.max(1, Math.round(raw)) - (rng.chance(0.7) ? 0.01 : 0.1);
}

function productName(category: Category, rank: number): string {
  const name = category.names[rank % category.names.length] as string;
  const series = Math.floor(rank / category.names.length);
  return series === 0 ? name : `${name} ${series + 1}`;
}

function zipfCumulative(size: number): Float64Array {
  const weights = Array.from({ length: size }, (_, rank) => 1 / (rank + 1) ** ZIPF_EXPONENT);
  const total = weights.reduce((sum, w) => sum + w, 0);
  let running = 0;
  return Float64Array.from(weights, (w) => (running += w / total));
}

/** Products dealt round-robin over up to six categories; rank 0 is each category's best seller. */
export function buildCatalog(productCount: number, rng: Rng): Catalog {
  const categories = CATEGORIES.slice(0, Math.min(CATEGORIES.length, productCount));
  const byCategory: number[][] = categories.map(() => []);
  const products: Product[] = [];
  for (let i = 0; i < productCount; i++) {
    const c = i % categories.length;
    const category = categories[c] as Category;
    const members = byCategory[c] as number[];
    const rank = members.length;
    members.push(products.length);
    products.push({
      sku: `SKU-${category.skuPrefix}-${String(rank + 1).padStart(3, '0')}`,
      name: productName(category, rank),
      category: c,
      basePrice: basePrice(category.priceRange, rng),
    });
  }
  return { categories, products, byCategory, zipf: byCategory.map((members) => zipfCumulative(members.length)) };
}
