// What the device SDK does with entries of its DeviceStore that it cannot read: an enrolment is
// a stable DeviceError, and a kept audit-log checkpoint is refused rather than forgotten (a
// forgotten one would let the service roll the phone back to any tree). No service is reached.
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  auditLogEntry,
  DeviceHome,
  followAuditLog,
  MemoryDeviceStore,
  type Enrolment,
} from '../../sdk/index.ts';
import { parseStoredJson } from '../../sdk/store.ts';

describe('the device SDK reading its store', () => {
  it('parses an entry through its schema, and gives nothing for bad JSON or the wrong shape', () => {
    const schema = z.strictObject({ size: z.int() });
    expect(parseStoredJson('{"size":3}', schema)).toEqual({ size: 3 });
    expect(parseStoredJson('{"size":', schema)).toBeUndefined();
    expect(parseStoredJson('{"size":"3"}', schema)).toBeUndefined();
  });

  it('refuses an unreadable enrolment with ENROLMENT_UNREADABLE, and names none it does not have', async () => {
    const store = new MemoryDeviceStore();
    const home = new DeviceHome(store);
    await expect(home.open()).rejects.toMatchObject({ code: 'NOT_PAIRED' });
    await store.set('enrolments/st-a', '{not json');
    await expect(home.open()).rejects.toMatchObject({ code: 'ENROLMENT_UNREADABLE' });
    await store.set('enrolments/st-b', '{}');
    await expect(home.open()).rejects.toMatchObject({ code: 'HOSPITAL_NOT_CHOSEN' });
    await expect(home.open('st-b')).rejects.toMatchObject({ code: 'ENROLMENT_UNREADABLE' });
  });

  it('refuses to follow the audit log from a kept checkpoint it cannot read', async () => {
    const store = new MemoryDeviceStore();
    await store.set(auditLogEntry('st-a'), '{"size":-1}');
    const enrolment = {
      data: { hospitalId: 'st-a' },
      api: {
        call: () => Promise.reject(new Error('no call is made')),
        raw: () => Promise.reject(new Error('no call is made')),
      },
    } as unknown as Enrolment;
    await expect(followAuditLog(new DeviceHome(store), enrolment)).rejects.toMatchObject({
      code: 'AUDIT_LOG_STATE_UNREADABLE',
    });
  });
});
