// What the store keeps about buckets and objects, how clients may change it (checked with
// zod), and how it is rendered as JSON API resources (int64 fields as strings, base64
// hashes, RFC 3339 times).
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { invalid } from './errors.ts';
import { encodeName } from './names.ts';

/** The settable part of an object's metadata. */
export interface ObjectFields {
  contentType?: string;
  contentEncoding?: string;
  contentDisposition?: string;
  contentLanguage?: string;
  cacheControl?: string;
  customTime?: string;
  storageClass?: string;
  temporaryHold?: boolean;
  eventBasedHold?: boolean;
  metadata?: Record<string, string>;
}

export interface ObjectRecord extends ObjectFields {
  bucket: string;
  name: string;
  generation: number;
  metageneration: number;
  size: number;
  crc32c: string;
  /** Absent on composite objects, as in Cloud Storage. */
  md5Hash?: string;
  componentCount?: number;
  timeCreated: string;
  updated: string;
}

export interface BucketRecord {
  name: string;
  projectId: string;
  metageneration: number;
  timeCreated: string;
  updated: string;
  location: string;
  storageClass: string;
  labels?: Record<string, string>;
  versioning?: { enabled: boolean };
  /** Settings kept verbatim and echoed back (lifecycle, cors, iamConfiguration…). */
  extra?: Record<string, unknown>;
}

const text = z.string().max(4096);
const metadataValue = z.union([z.string(), z.number(), z.boolean()]).transform(String);

/** Object metadata as a client sends it on insert, copy or patch; null clears a field. */
export const objectInputSchema = z.object({
  name: z.string().optional(),
  bucket: z.string().optional(),
  contentType: text.nullish(),
  contentEncoding: text.nullish(),
  contentDisposition: text.nullish(),
  contentLanguage: text.nullish(),
  cacheControl: text.nullish(),
  customTime: z.iso.datetime({ offset: true }).nullish(),
  storageClass: z
    .enum(['STANDARD', 'NEARLINE', 'COLDLINE', 'ARCHIVE', 'MULTI_REGIONAL', 'REGIONAL'])
    .nullish(),
  temporaryHold: z.boolean().nullish(),
  eventBasedHold: z.boolean().nullish(),
  metadata: z.record(z.string().max(1024), metadataValue.nullable()).nullish(),
  crc32c: z.string().optional(),
  md5Hash: z.string().optional(),
});
export type ObjectInput = z.infer<typeof objectInputSchema>;

export const bucketInputSchema = z.object({
  name: z.string().optional(),
  location: z.string().max(64).optional(),
  storageClass: z.string().max(32).optional(),
  labels: z.record(z.string().max(63), z.string().max(63).nullable()).nullish(),
  versioning: z.object({ enabled: z.boolean() }).nullish(),
  lifecycle: z.unknown().optional(),
  cors: z.unknown().optional(),
  iamConfiguration: z.unknown().optional(),
  retentionPolicy: z.unknown().optional(),
  softDeletePolicy: z.unknown().optional(),
  hierarchicalNamespace: z.unknown().optional(),
});
export type BucketInput = z.infer<typeof bucketInputSchema>;

const EXTRA_BUCKET_KEYS = [
  'lifecycle',
  'cors',
  'iamConfiguration',
  'retentionPolicy',
  'softDeletePolicy',
  'hierarchicalNamespace',
] as const;

export function parseInput<T>(schema: z.ZodType<T>, value: unknown): T {
  const parsed = schema.safeParse(value ?? {});
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  const field = issue?.path.join('.') || 'body';
  throw invalid(`Invalid value for field '${field}': ${issue?.message ?? 'invalid'}`);
}

const STRING_FIELDS = [
  'contentType',
  'contentEncoding',
  'contentDisposition',
  'contentLanguage',
  'cacheControl',
  'customTime',
  'storageClass',
] as const;
const BOOLEAN_FIELDS = ['temporaryHold', 'eventBasedHold'] as const;

/** Every writable object field a request body may set. */
export const OBJECT_FIELD_KEYS = [...STRING_FIELDS, ...BOOLEAN_FIELDS, 'metadata'] as const;

/**
 * Applies `input` to `base` with patch semantics: absent fields stay, null clears, and the
 * custom `metadata` map is merged key by key (a null value deletes that key).
 */
export function patchFields(base: ObjectFields, input: ObjectInput): ObjectFields {
  const out: ObjectFields = { ...base };
  for (const key of STRING_FIELDS) {
    const value = input[key];
    if (value === null) delete out[key];
    else if (value !== undefined) out[key] = value;
  }
  for (const key of BOOLEAN_FIELDS) {
    const value = input[key];
    if (value === null) delete out[key];
    else if (value !== undefined) out[key] = value;
  }
  if (input.metadata === null) delete out.metadata;
  else if (input.metadata !== undefined) {
    const merged: Record<string, string> = { ...base.metadata };
    for (const [key, value] of Object.entries(input.metadata)) {
      if (value === null) delete merged[key];
      else merged[key] = value;
    }
    if (Object.keys(merged).length > 0) out.metadata = merged;
    else delete out.metadata;
  }
  return out;
}

/** Update (PUT) semantics: the settable fields become exactly what `input` holds. */
export function replaceFields(input: ObjectInput): ObjectFields {
  return patchFields({}, input);
}

export function fieldsOf(record: ObjectRecord): ObjectFields {
  const out: ObjectFields = {};
  for (const key of STRING_FIELDS) if (record[key] !== undefined) out[key] = record[key];
  for (const key of BOOLEAN_FIELDS) if (record[key] !== undefined) out[key] = record[key];
  if (record.metadata) out.metadata = { ...record.metadata };
  return out;
}

// Cloud Storage's etag is a base64 protobuf of (generation, metageneration).
function varint(value: number): number[] {
  const out: number[] = [];
  let v = value;
  while (v >= 0x80) {
    out.push((v % 0x80) | 0x80);
    v = Math.floor(v / 0x80);
  }
  out.push(v);
  return out;
}

export function objectEtag(generation: number, metageneration: number): string {
  return Buffer.from([0x08, ...varint(generation), 0x10, ...varint(metageneration)]).toString('base64');
}

export function objectResource(record: ObjectRecord, baseUrl: string): Record<string, unknown> {
  const name = encodeName(record.name);
  const generation = String(record.generation);
  const resource: Record<string, unknown> = {
    kind: 'storage#object',
    id: `${record.bucket}/${record.name}/${generation}`,
    selfLink: `${baseUrl}/storage/v1/b/${record.bucket}/o/${name}`,
    mediaLink: `${baseUrl}/download/storage/v1/b/${record.bucket}/o/${name}?generation=${generation}&alt=media`,
    name: record.name,
    bucket: record.bucket,
    generation,
    metageneration: String(record.metageneration),
    contentType: record.contentType ?? 'application/octet-stream',
    storageClass: record.storageClass ?? 'STANDARD',
    size: String(record.size),
    crc32c: record.crc32c,
    etag: objectEtag(record.generation, record.metageneration),
    timeCreated: record.timeCreated,
    updated: record.updated,
    timeStorageClassUpdated: record.timeCreated,
    timeFinalized: record.timeCreated,
  };
  if (record.md5Hash !== undefined) resource.md5Hash = record.md5Hash;
  if (record.componentCount !== undefined) resource.componentCount = record.componentCount;
  for (const key of [
    'contentEncoding',
    'contentDisposition',
    'contentLanguage',
    'cacheControl',
    'customTime',
  ] as const) {
    if (record[key] !== undefined) resource[key] = record[key];
  }
  for (const key of BOOLEAN_FIELDS) if (record[key] !== undefined) resource[key] = record[key];
  if (record.metadata) resource.metadata = { ...record.metadata };
  return resource;
}

/** A stable, plausible 12-digit project number for a project id. */
export function projectNumber(projectId: string): string {
  const digest = createHash('sha256').update(projectId).digest();
  return String(100000000000 + (digest.readUIntBE(0, 6) % 900000000000));
}

export function newBucketRecord(
  name: string,
  projectId: string,
  input: BucketInput,
  now: string,
): BucketRecord {
  const record: BucketRecord = {
    name,
    projectId,
    metageneration: 1,
    timeCreated: now,
    updated: now,
    location: (input.location ?? 'US').toUpperCase(),
    storageClass: (input.storageClass ?? 'STANDARD').toUpperCase(),
  };
  return applyBucketInput(record, input);
}

export function applyBucketInput(record: BucketRecord, input: BucketInput): BucketRecord {
  const out: BucketRecord = { ...record };
  if (input.labels === null) delete out.labels;
  else if (input.labels) {
    const labels: Record<string, string> = { ...record.labels };
    for (const [key, value] of Object.entries(input.labels)) {
      if (value === null) delete labels[key];
      else labels[key] = value;
    }
    if (Object.keys(labels).length > 0) out.labels = labels;
    else delete out.labels;
  }
  if (input.versioning === null) delete out.versioning;
  else if (input.versioning) out.versioning = input.versioning;
  const extra: Record<string, unknown> = { ...record.extra };
  for (const key of EXTRA_BUCKET_KEYS) if (input[key] !== undefined) extra[key] = input[key];
  if (Object.keys(extra).length > 0) out.extra = extra;
  return out;
}

export function bucketResource(record: BucketRecord, baseUrl: string): Record<string, unknown> {
  const multiRegion = ['US', 'EU', 'ASIA'].includes(record.location);
  return {
    kind: 'storage#bucket',
    selfLink: `${baseUrl}/storage/v1/b/${record.name}`,
    id: record.name,
    name: record.name,
    projectNumber: projectNumber(record.projectId),
    metageneration: String(record.metageneration),
    location: record.location,
    locationType: multiRegion ? 'multi-region' : 'region',
    storageClass: record.storageClass,
    etag: Buffer.from([0x08, ...varint(record.metageneration)]).toString('base64'),
    timeCreated: record.timeCreated,
    updated: record.updated,
    ...(record.labels ? { labels: { ...record.labels } } : {}),
    ...(record.versioning ? { versioning: record.versioning } : {}),
    ...record.extra,
  };
}
