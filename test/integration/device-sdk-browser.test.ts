// The device SDK where phones run it: built for the browser (sdk/build-bundle.ts) and run in
// Debian's headless Chromium against the local stack. The page is served from an origin of its
// own (http://localhost:<port>, a small server of the test's), as a web app or a web view's
// capacitor://localhost is: the SDK calls the real functions at http://127.0.0.1:<port> across
// origins, so every call also proves the API's CORS answers. The browser pairs from the QR
// text, the hospital's connector sends it a record of several chunks, and the browser syncs
// it into the Origin Private File System piece by piece, then acknowledges it.
import { createHash, randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readQrPng } from '../../clients/lib/qr.ts';
import { RECORDS_COLLECTION } from '../../shared/adapters/firestore-records.ts';
import { createFirestore } from '../../shared/adapters/google-clients.ts';
import { buildSdkBundle, SDK_BUNDLE_FILE, type SdkBundle } from '../../sdk/build-bundle.ts';
import { jsonOutput } from '../helpers/bins.ts';
import { launchBrowser, type TestBrowser } from '../helpers/browser.ts';
import { runSequencer } from '../helpers/audit-logs.ts';
import { onboardConnector, type OnboardedConnector } from '../helpers/onboarded-connector.ts';

const HOSPITAL = 'st-sdk-browser';
const PATIENT = 'browser-patient-1';
/** Several chunks of the default 1 MiB, and a short last one. */
const RECORD_BYTES = 3 * 1024 * 1024 + 4321;

describe('the device SDK in a browser', { timeout: 240_000 }, () => {
  let onboarded: OnboardedConnector;
  let bundle: SdkBundle;
  let browser: TestBrowser;
  let page: Page;
  let apiOrigin: string;
  /** The app's own origin: another port, and another host name for the loopback address. */
  let origin: string;
  let site: Server;

  beforeAll(async () => {
    onboarded = await onboardConnector({ hospitalId: HOSPITAL });
    bundle = await buildSdkBundle(join(onboarded.dir, 'sdk-bundle'));
    apiOrigin = onboarded.stack.env.FUNCTIONS_BASE_URL!;
    const files: Record<string, { path: string; type: string }> = {
      [SDK_BUNDLE_FILE]: { path: bundle.file, type: 'text/javascript' },
      'libthemis.wasm': { path: join(bundle.dir, 'libthemis.wasm'), type: 'application/wasm' },
    };
    // A real server, not a routed page: Chromium counts a page it did not fetch as public, and
    // its Local Network Access rules then refuse any call to the loopback API outright.
    site = createServer((req, res) => {
      const name = new URL(req.url ?? '/', 'http://site').pathname.slice('/sdk-test/'.length);
      if (name === 'index.html') {
        res.writeHead(200, { 'content-type': 'text/html' }).end('<!doctype html><title>device</title>');
        return;
      }
      const file = files[name];
      if (!file) return void res.writeHead(404).end();
      void readFile(file.path).then((bytes) => res.writeHead(200, { 'content-type': file.type }).end(bytes));
    });
    await new Promise<void>((resolve) => site.listen(0, '127.0.0.1', resolve));
    origin = `http://localhost:${(site.address() as AddressInfo).port}`;
    expect(new URL(apiOrigin).hostname).not.toBe('localhost');
    browser = await launchBrowser();
    page = await browser.context.newPage();
    await page.goto(`${origin}/sdk-test/index.html`);
  });

  afterAll(async () => {
    await browser?.close();
    site?.close();
    await onboarded?.close();
  });

  it('is built without a Node built-in: the web platform, Themis for Secure Cell, no file store', () => {
    expect(bundle.modules).toContain('sdk/index.ts');
    expect(bundle.modules).toContain('shared/core/platform/web.ts');
    expect(bundle.modules).toContain('shared/core/crypto/secure-cell-seal-wasm.ts');
    for (const nodeOnly of [
      'sdk/node.ts',
      'shared/core/platform/node.ts',
      'shared/core/crypto/secure-cell-seal.ts',
      'clients/lib/reachability.ts',
    ]) {
      expect(bundle.modules).not.toContain(nodeOnly);
    }
    // No import of a built-in survives (the build itself refuses one), and no polyfill of one
    // was bundled in its place.
    expect(bundle.code).not.toMatch(
      /\bfrom\s*["'](node:)?(fs|path|crypto|net|util|events|stream|buffer)["']/,
    );
    expect(bundle.code).not.toMatch(/\brequire\(["'](node:)?[a-z_]+["']\)/);
    expect(bundle.modules.filter((id) => /node_modules\/(util|buffer|events|process)\//.test(id))).toEqual(
      [],
    );
  });

  it('cannot be built once anything in it reaches a Node built-in', async () => {
    const leaky = join(onboarded.dir, 'leaky-entry.ts');
    await writeFile(
      leaky,
      `export * from '${join(process.cwd(), 'sdk', 'index.ts')}';\nexport { readFileSync } from 'node:fs';\n`,
    );
    await expect(buildSdkBundle(join(onboarded.dir, 'leaky-bundle'), leaky)).rejects.toThrow(
      /reaches Node built-ins: node:fs/,
    );
  });

  it('C7 pairs from the QR text (a page on another origin than the API), then syncs a record into the browser’s storage chunk by chunk, verified and acknowledged', async () => {
    const png = join(onboarded.dir, 'invite.png');
    const invited = jsonOutput<{ qrPng: string }>(
      await onboarded.connector('invite', PATIENT, '--out', png, '--json'),
    );
    const qrText = await readQrPng(invited.qrPng);

    // The page imports the bundle as any web app would: a module script.
    await page.addScriptTag({
      type: 'module',
      content: `import * as sdk from './${SDK_BUNDLE_FILE}'; globalThis.sdk = sdk;`,
    });
    await page.waitForFunction(() => 'sdk' in globalThis);
    const paired = await page.evaluate(async (qrText) => {
      const { sdk } = globalThis as unknown as {
        sdk: {
          DeviceHome: new (store: unknown) => unknown;
          MemoryDeviceStore: new () => unknown;
          pairFromQr: (
            ...args: unknown[]
          ) => Promise<{ hospitalId: string; apiHost: string; deviceId: string }>;
        };
      };
      const home = new sdk.DeviceHome(new sdk.MemoryDeviceStore());
      Object.assign(globalThis, { home });
      return sdk.pairFromQr(home, qrText, { platform: 'other', fcmToken: 'local-browser-device' });
    }, qrText);
    expect(paired).toMatchObject({ hospitalId: HOSPITAL, apiHost: new URL(apiOrigin).host });

    // The connector checks the browser's device (certificate, binding proof) and encrypts for it.
    const devices = jsonOutput<{ devices: { deviceId: string; verified: boolean }[] }>(
      await onboarded.connector('devices', '--patient', PATIENT, '--json'),
    );
    expect(devices.devices).toEqual([expect.objectContaining({ deviceId: paired.deviceId, verified: true })]);
    const content = randomBytes(RECORD_BYTES);
    const letter = join(onboarded.dir, 'scan.pdf');
    await writeFile(letter, content);
    const sent = await onboarded.connector('send', letter, '--patient', PATIENT, '--wait', '--quiet');
    expect(sent.code, sent.stderr).toBe(0);

    const synced = await page.evaluate(async () => {
      const { sdk, home } = globalThis as unknown as {
        sdk: {
          syncRecords: (
            ...args: unknown[]
          ) => Promise<{ recordId: string; outcome: string; file?: string }[]>;
        };
        home: { open(): Promise<unknown> };
      };
      const root = await navigator.storage.getDirectory();
      const writes: number[] = [];
      const sink = {
        async open(recordId: string) {
          const partial = await root.getFileHandle(`${recordId}.partial`, { create: true });
          const writable = await partial.createWritable();
          return {
            async write(piece: Uint8Array) {
              writes.push(piece.length);
              await writable.write(piece as Uint8Array<ArrayBuffer>);
            },
            async commit(header: { filename: string }) {
              await writable.close();
              await (partial as unknown as { move(name: string): Promise<void> }).move(header.filename);
              return header.filename;
            },
            async abort() {
              await writable.abort();
              await root.removeEntry(`${recordId}.partial`);
            },
          };
        },
      };
      const progress: [number, number][] = [];
      const results = await sdk.syncRecords(home, await home.open(), sink, {
        onProgress: (_stage: string, done: number, total: number) => progress.push([done, total]),
      });
      const stored = await (await root.getFileHandle(results[0]!.file!)).getFile();
      const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', await stored.arrayBuffer()));
      return {
        results,
        writes,
        progress: progress.at(-1),
        progressCalls: progress.length,
        size: stored.size,
        sha256: Array.from(digest, (byte) => byte.toString(16).padStart(2, '0')).join(''),
        names: await (async () => {
          const names: string[] = [];
          for await (const name of (root as unknown as { keys(): AsyncIterable<string> }).keys())
            names.push(name);
          return names;
        })(),
      };
    });
    expect(synced.results).toEqual([{ recordId: expect.any(String), outcome: 'stored', file: 'scan.pdf' }]);
    expect(synced.size).toBe(RECORD_BYTES);
    expect(synced.sha256).toBe(createHash('sha256').update(content).digest('hex'));
    // Streamed: the plaintext reached storage in pieces no bigger than a chunk, never whole.
    expect(synced.writes.length).toBeGreaterThanOrEqual(4);
    expect(Math.max(...synced.writes)).toBeLessThanOrEqual(1024 * 1024);
    expect(synced.progressCalls).toBeGreaterThan(1);
    expect(synced.progress![0]).toBe(synced.progress![1]);
    expect(synced.names).toEqual(['scan.pdf']); // the partial file became the record

    // The acknowledgement reached the service: the record shows this device stored it.
    const firestore = createFirestore(onboarded.stack.env.GCLOUD_PROJECT!, onboarded.stack.env);
    try {
      const record = await firestore.collection(RECORDS_COLLECTION).doc(synced.results[0]!.recordId).get();
      expect(record.get('acks')).toMatchObject({ [paired.deviceId]: { outcome: 'stored' } });
    } finally {
      await firestore.terminate();
    }

    // The audit log, checked in the browser as on a phone: the sequencer integrates the events
    // (the pairing, the download, the acknowledgement), the hospital's witness cosigns, and the
    // SDK accepts the checkpoint (platform signature, witness cosignature from the QR) and proves
    // each access-log entry included, with the web platform's SHA-256 and Ed25519.
    await runSequencer(onboarded.stack);
    const cosigned = jsonOutput<{ cosigned: boolean }>(await onboarded.connector('witness', '--json'));
    expect(cosigned.cosigned).toBe(true);
    const accessLog = await page.evaluate(async () => {
      const { sdk, home } = globalThis as unknown as {
        sdk: {
          verifiedAccessLog: (...args: unknown[]) => Promise<{
            treeSize: number;
            entries: { entry: { action: string; recordId?: string }; verified: boolean }[];
          }>;
        };
        home: { open(): Promise<unknown> };
      };
      return sdk.verifiedAccessLog(home, await home.open(), 50);
    });
    expect(accessLog.treeSize).toBeGreaterThan(0);
    const actions = accessLog.entries.map(({ entry, verified }) => [entry.action, entry.recordId, verified]);
    expect(actions).toEqual(
      expect.arrayContaining([
        ['record.downloaded', synced.results[0]!.recordId, true],
        ['record.acknowledged', synced.results[0]!.recordId, true],
      ]),
    );
  });
});
