// Everything a local stack stores, read back as an auditor would: every Firestore document
// (subcollections included) and every object of every bucket of the catalog, each as text. The
// erasure and data-inventory tests search it for a patient's ids and classify it against
// infra/data-inventory.json.
import type { CollectionReference, Firestore } from '@google-cloud/firestore';
import type { BlobStore } from '../../shared/ports/blob-store.ts';
import { bucketName, loadCatalog } from '../../shared/runtime/catalog.ts';

export interface StoredDocument {
  readonly path: string;
  readonly text: string;
}

export interface StoredObject {
  /** The bucket's role in the catalog (records, outbox …), not its project-specific name. */
  readonly bucket: string;
  readonly name: string;
  readonly text: string;
}

export interface StoredData {
  readonly documents: StoredDocument[];
  readonly objects: StoredObject[];
}

export async function storedData(
  firestore: Firestore,
  blobs: BlobStore,
  projectId: string,
  options: { readonly skipCollections?: readonly string[]; readonly buckets?: readonly string[] } = {},
): Promise<StoredData> {
  const documents: StoredDocument[] = [];
  async function walk(collections: CollectionReference[]): Promise<void> {
    for (const collection of collections) {
      if (options.skipCollections?.includes(collection.id)) continue;
      // listDocuments also finds a document that exists only as the parent of a subcollection.
      for (const ref of await collection.listDocuments()) {
        const snapshot = await ref.get();
        if (snapshot.exists) documents.push({ path: ref.path, text: JSON.stringify(snapshot.data()) });
        await walk(await ref.listCollections());
      }
    }
  }
  await walk(await firestore.listCollections());

  const objects: StoredObject[] = [];
  const catalog = loadCatalog();
  for (const role of Object.keys(catalog.buckets)) {
    if (options.buckets && !options.buckets.includes(role)) continue;
    const bucket = bucketName(catalog, role, projectId);
    let pageToken: string | undefined;
    do {
      const page = await blobs.list(bucket, '', pageToken ? { pageToken } : {});
      for (const item of page.items) {
        const chunks: Uint8Array[] = [];
        for await (const chunk of blobs.read(item.bucket, item.name)) chunks.push(chunk);
        objects.push({ bucket: role, name: item.name, text: Buffer.concat(chunks).toString('latin1') });
      }
      pageToken = page.nextPageToken;
    } while (pageToken);
  }
  return { documents, objects };
}

/** All of it as one text, each document and object preceded by its path. */
export function asText({ documents, objects }: StoredData): string {
  return [
    ...documents.flatMap((doc) => [doc.path, doc.text]),
    ...objects.flatMap((object) => [object.name, object.text]),
  ].join('\n');
}
