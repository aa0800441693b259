export const COMPILED_MAIN: URL;
export const SOURCE_MAIN: URL;
export function buildState(): 'current' | 'outdated' | 'missing';
