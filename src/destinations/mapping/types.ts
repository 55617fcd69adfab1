/** The shapes shared by the compiler and every directive (docs/templates.md describes the language). */

/** A problem found while compiling a mapping; `path` is a JSON path such as `mappings[0].event.x`. */
export interface MappingIssue {
  path: string;
  message: string;
}

/** What a compiled mapping reads: `$` is `current`, `$$` is `root`. */
export interface Scope {
  root: unknown;
  current: unknown;
  settings: Readonly<Record<string, unknown>>;
}

/** A compiled piece of mapping: run per event on the ingest hot path, never throws on JSON input. */
export type Evaluator = (scope: Scope) => unknown;
