// `npm run schema`: writes config/tagwarden.schema.json for editor completion
// (yaml-language-server: `# yaml-language-server: $schema=./tagwarden.schema.json`) and the
// generated reference table in docs/configuration.md.
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { configJsonSchema } from './json-schema.ts';
import { withReference } from './reference.ts';

const schemaFile = fileURLToPath(new URL('../../config/tagwarden.schema.json', import.meta.url));
writeFileSync(schemaFile, JSON.stringify(configJsonSchema(), null, 2) + '\n');
console.log(`wrote ${schemaFile}`);

const docFile = fileURLToPath(new URL('../../docs/configuration.md', import.meta.url));
writeFileSync(docFile, withReference(readFileSync(docFile, 'utf8')));
console.log(`updated ${docFile}`);
