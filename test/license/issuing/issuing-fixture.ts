// What the issuing back end's tests share: a real service on 127.0.0.1:0 over a temp data directory (SQLite, or a
// PostgreSQL URL), two licensors, a clock the test moves, row counts of every table, and a card that applies the
// updates with the card's own apply (license-apply.ts) and signs the receipt record the way the VSC applet signs
// (patent 003 [0056]: SHA-256(h1 ‖ counter), individual key).
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { signedDigest } from '../../../src/apdu/index.js';
import { bytesEqual } from '../../../src/bytes/index.js';
import { ed25519KeyFromSeed, generateEd25519Seed, type Ed25519SigningKey } from '../../../src/crypto/index.js';
import {
  addLicensor, applyLicenseBody, EMPTY_CONTAINER, HubLink, IssuingClient, openIssuingBackend, type HubLinkEvent, parseSignedBody, startIssuingService, type ActivationRequest, type FirmItem,
  type IssuingBackend, type LicenseContainer, type ProductItem,
} from '../../../src/license/index.js';
import { recordHash, type AuditRecord } from '../../../src/rental/index.js';
import { freePort } from '../../support/index.js';

export const START = 1_800_000_000;
export const TABLES = [
  'issuing_licensors', 'issuing_products', 'issuing_orders', 'issuing_tickets', 'issuing_activations', 'issuing_audit',
  'issuing_restore_policies', 'issuing_updates', 'issuing_restores', 'issuing_locks', 'issuing_central_locks', 'issuing_alerts', 'issuing_withdrawals',
] as const;

export interface TestLicensor {
  readonly name: string;
  readonly firmCode: number;
  readonly publicKey: Uint8Array;
  readonly apiKey: string;
  readonly client: IssuingClient;
}

export interface IssuingHarness {
  readonly url: string;
  readonly backend: IssuingBackend;
  readonly clock: { now: number };
  readonly a: TestLicensor;
  readonly b: TestLicensor;
  readonly customer: IssuingClient;
  /** The link to the hub, when the harness has one. */
  readonly hub?: HubLink;
  /** Rows of every issuing table, by name. */
  counts(): Promise<Record<string, number>>;
  close(): Promise<void>;
}

/** A port free a moment ago (the service must know its public URL before it listens, as `--public-url` says it). */
export interface HarnessOptions {
  readonly databaseUrl?: string;
  readonly perClientPerMinute?: number;
  readonly trustProxy?: string;
  /** A hub to link to (`vsc license serve --hub URL --hub-key HEX --public-url URL`); the link is not started. */
  readonly hub?: { readonly url: string; readonly authorityKey: Uint8Array; readonly onEvent?: (event: HubLinkEvent) => void };
  /** The clock the harness moves (a hub in the same test shares it). */
  readonly clock?: { now: number };
}

export async function startIssuingHarness(options: HarnessOptions = {}): Promise<IssuingHarness> {
  const dir = mkdtempSync(join(tmpdir(), 'vsc-issuing-'));
  const clock = options.clock ?? { now: START };
  const backend = await openIssuingBackend({ dataDir: join(dir, 'data'), now: () => clock.now, ...(options.databaseUrl === undefined ? {} : { databaseUrl: options.databaseUrl }) });
  const port = options.hub === undefined ? 0 : await freePort();
  const hub = options.hub === undefined ? undefined : new HubLink(backend, {
    hubUrl: options.hub.url, authorityKey: options.hub.authorityKey, publicUrl: `http://127.0.0.1:${port}`, ...(options.hub.onEvent === undefined ? {} : { onEvent: options.hub.onEvent }),
  });
  const service = await startIssuingService({
    backend, host: '127.0.0.1', port, perClientPerMinute: options.perClientPerMinute ?? 1_000_000, ...(options.trustProxy === undefined ? {} : { trustProxy: options.trustProxy }),
    ...(hub === undefined ? {} : { hub }),
  });
  const licensor = async (name: string, firmCode: number): Promise<TestLicensor> => {
    const made = await addLicensor(backend, { name, firmCode });
    return { name, firmCode, publicKey: made.licensor.publicKey, apiKey: made.apiKey, client: new IssuingClient({ server: service.url, apiKey: made.apiKey }) };
  };
  const a = await licensor('Example Software', 1001);
  const b = await licensor('Other Software', 1002);
  return {
    url: service.url, backend, clock, a, b, customer: new IssuingClient({ server: service.url }), ...(hub === undefined ? {} : { hub }),
    async counts() {
      const out: Record<string, number> = {};
      for (const table of TABLES) {
        const row = await backend.database.db.selectFrom(table).select((eb) => eb.fn.countAll<number | string>().as('n')).executeTakeFirstOrThrow();
        out[table] = Number(row.n);
      }
      return out;
    },
    async close() {
      await hub?.stop();
      await service.close();
      await backend.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A product template in the JSON a licensor posts. */
export const template = (fields: Record<string, unknown> = {}): Record<string, unknown> => ({ featureMap: 1, ...fields });

/**
 * A card with a license container: applies an update as the card's applet does (license-apply.ts: only for its serial,
 * signed by the body's licensor, at the firm update counter the container has) and signs the receipt record.
 */
export class TestCard {
  readonly serial: string;
  readonly key: Ed25519SigningKey;
  counter = 5n;
  container: LicenseContainer = EMPTY_CONTAINER;

  constructor(serial = `CARD-${randomBytes(4).toString('hex')}`) {
    this.serial = serial;
    this.key = ed25519KeyFromSeed(generateEd25519Seed());
  }

  #firm(licensor: TestLicensor): FirmItem | undefined {
    return this.container.firms.find((firm) => bytesEqual(firm.licensorKey, licensor.publicKey));
  }

  firmCounter(licensor: TestLicensor): number | null {
    return this.#firm(licensor)?.updateCounter ?? null;
  }

  activation(ticket: string, licensor: TestLicensor, requestId: Uint8Array = Uint8Array.from(randomBytes(16))): ActivationRequest {
    return { ticket, serial: this.serial, cardPublicKey: this.key.publicKey, firmUpdateCounter: this.firmCounter(licensor), requestId };
  }

  /** Applies the update file; returns the receipt record the card signs, or throws the card's LicenseError. */
  apply(updateText: string): AuditRecord {
    const applied = applyLicenseBody(this.container, parseSignedBody(updateText), this.serial, { random: (length) => Uint8Array.from(randomBytes(length)) });
    this.container = applied.container;
    return this.sign(applied.text);
  }

  /** Signs `text` as SIGN AND INCREMENT does (individual key). */
  sign(text: string): AuditRecord {
    const nonce = Uint8Array.from(randomBytes(16));
    const counter = this.counter;
    this.counter += 1n;
    return { nonce, text, counter, signature: this.key.sign(signedDigest(recordHash(nonce, text), counter, 'individual', this.serial)) };
  }

  product(licensor: TestLicensor, code: number): ProductItem | undefined {
    return this.#firm(licensor)?.products.find((product) => product.productCode === code);
  }
}

