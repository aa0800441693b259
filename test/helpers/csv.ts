import Papa from 'papaparse';

/** A CSV file's text (or bytes) read back as rows of cells, with the parser the importer uses. */
export function csvRows(text: string | Buffer): string[][] {
  const parsed = Papa.parse<string[]>(String(text), { delimiter: ',', skipEmptyLines: true });
  if (parsed.errors.length > 0) throw new Error(`unreadable CSV: ${parsed.errors[0]!.message} (row ${parsed.errors[0]!.row})`);
  return parsed.data;
}

/** A CSV file read back as one record per line, keyed by the header's column names. */
export function csvRecords(text: string | Buffer): Array<Record<string, string>> {
  const [header = [], ...rows] = csvRows(text);
  return rows.map((row) => Object.fromEntries(header.map((name, index) => [name, row[index] ?? ''])));
}
