// `npm run schema`: writes config/tagwarden.schema.json for editor completion
// (yaml-language-server: `# yaml-language-server: $schema=./tagwarden.schema.json`).
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { configJsonSchema } from './json-schema.ts';

const out = fileURLToPath(new URL('../../config/tagwarden.schema.json', import.meta.url));
writeFileSync(out, JSON.stringify(configJsonSchema(), null, 2) + '\n');
console.log(`wrote ${out}`);
