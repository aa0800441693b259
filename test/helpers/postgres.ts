import pg from 'pg';

export function databaseUrlFor(url: string, database: string): string {
  const parsed = new URL(url);
  parsed.pathname = `/${database}`;
  return parsed.toString();
}

/** A connection to the server's maintenance database, to create and drop test databases. */
export function adminPool(url: string): pg.Pool {
  return new pg.Pool({ connectionString: databaseUrlFor(url, 'postgres'), max: 2 });
}
