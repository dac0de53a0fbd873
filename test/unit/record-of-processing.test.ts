// docs/RECORD_OF_PROCESSING.md is generated from the code's sources of truth; this fails when the
// committed file is not what the generator writes now (run `npm run record-of-processing`).
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { INGEST_LIFETIMES } from '../../shared/services/ingest-disposal.ts';
import { RETENTION_BOUNDS } from '../../shared/retention/policy.ts';
import { formattedRecord, RECORD_FILE, renderRecord } from '../compliance/record-of-processing.ts';

describe('docs/RECORD_OF_PROCESSING.md', () => {
  it('is exactly what the generator writes from the catalog, the inventory and the retention bounds', async () => {
    expect(readFileSync(RECORD_FILE, 'utf8')).toBe(await formattedRecord());
  });

  it('takes its numbers from the code', () => {
    const text = renderRecord();
    const [byDefault, min, max] = RETENTION_BOUNDS.recordDays;
    expect(text).toContain(
      `${byDefault} days by default; the hospital may set ${min}–${max} (\`recordDays\`)`,
    );
    expect(text).toContain(`${INGEST_LIFETIMES.receiptDays} days (\`INGEST_LIFETIMES.receiptDays\``);
    expect(text).toContain('`europe-west4`');
  });
});
