// `npm run openapi`: writes docs/openapi.json, the OpenAPI 3.1 document of every endpoint a phone
// or a connector calls, generated from shared/core/protocol/api-contract.ts. `--check` writes
// nothing and exits 1 if the published file is not what the contract generates (the unit test
// test/unit/openapi.test.ts makes the same comparison on every `npm test`).
import { readFile, writeFile } from 'node:fs/promises';
import { openApiDocument } from '../shared/core/protocol/openapi.ts';
import { OPENAPI_FILE, openApiText } from './helpers/openapi.ts';

const text = await openApiText(openApiDocument());
if (process.argv.includes('--check')) {
  const published = await readFile(OPENAPI_FILE, 'utf8').catch(() => '');
  if (published !== text) {
    process.stderr.write(`${OPENAPI_FILE} is out of date: run npm run openapi\n`);
    process.exit(1);
  }
  process.stderr.write(`${OPENAPI_FILE} is up to date\n`);
} else {
  await writeFile(OPENAPI_FILE, text);
  process.stderr.write(`wrote ${OPENAPI_FILE}\n`);
}
