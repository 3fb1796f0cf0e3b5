// License containers for tests (src/license; Wibu 000 §2.2-2.8, 002 Table 1): two licensors with fixed keys, a product
// item with every option set, and signed updates and time certificates as a licensor issues them.
import { fromHex } from '../../src/bytes/index.js';
import { ed25519KeyFromSeed } from '../../src/crypto/index.js';
import {
  encodeSignedBody, signLicenseBody, type FirmItem, type LicenseContainer, type ProductItem, type ProductSpec, type SignedLicenseBody,
  type LicenseBackupsOptions, type TimeBody, type UpdateBody, type UpdateOperation,
} from '../../src/license/index.js';

/** RFC 8032 section 7.1 TEST 2 and TEST 3 secret keys: the licensors' seeds. */
export const LICENSOR_SEED = fromHex('4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb');
export const OTHER_LICENSOR_SEED = fromHex('c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7');
export const LICENSOR = ed25519KeyFromSeed(LICENSOR_SEED);
export const OTHER_LICENSOR = ed25519KeyFromSeed(OTHER_LICENSOR_SEED);

export const CARD_SERIAL = 'VSC-LIC-1';
export const FIRM_CODE = 10101;
/** 2027-01-15T08:00:00Z: the licensors' "now". */
export const T0 = 1_800_000_000;

/** A prepaid item with every option of 002 Table 1 set, as put-product carries it. */
export const FULL_PRODUCT: ProductSpec = {
  productCode: 7, text: 'Word processor (Pro)', featureMap: 0b1011, unitLimit: 100, payment: 'prepaid', expiration: T0 + 365 * 86_400,
  activationTime: T0 - 86_400, usagePeriodSeconds: 30 * 86_400, licenseQuantity: 5, versions: { min: 3, max: 5 }, maintenanceUntil: T0 + 90 * 86_400,
  namedUser: 'alice', boundTo: new Uint8Array(32).fill(0x42), countries: { allow: ['DE', 'AT'], deny: ['CH'] },
  timeZones: { minOffsetMinutes: -60, maxOffsetMinutes: 120 }, overflow: { seats: 2, until: T0 + 30 * 86_400 }, maxBorrowSeconds: 7 * 86_400,
  standby: { kind: 'cold', maxSeconds: 3_600 }, protectedData: Uint8Array.of(1, 2, 3), hiddenData: Uint8Array.of(0xa1, 0xa2), secretData: new Uint8Array(0),
};

/** A plain prepaid item: units only ('unlimited': no unit limit). */
export function simpleProduct(productCode: number, unitLimit: number | 'unlimited' = 10, overrides: Partial<ProductSpec> = {}): ProductSpec {
  return {
    productCode, text: `Product ${productCode}`, featureMap: 0b11, payment: 'prepaid', licenseQuantity: 1, ...(unitLimit === 'unlimited' ? {} : { unitLimit }),
    protectedData: new Uint8Array(0), hiddenData: new Uint8Array(0), secretData: new Uint8Array(0), ...overrides,
  };
}

export interface UpdateInit {
  readonly licensor?: typeof LICENSOR;
  readonly serial?: string;
  readonly firmCode?: number;
  readonly updateCounter?: number;
  readonly time?: number;
  readonly operations: readonly UpdateOperation[];
}

export function signedUpdate(init: UpdateInit): SignedLicenseBody<UpdateBody> {
  const licensor = init.licensor ?? LICENSOR;
  return signLicenseBody<UpdateBody>({
    kind: 'update', serial: init.serial ?? CARD_SERIAL, licensorKey: licensor.publicKey, firmCode: init.firmCode ?? FIRM_CODE,
    updateCounter: init.updateCounter ?? 0, time: init.time ?? T0, operations: init.operations,
  }, licensor);
}

/** The first update of a firm item: create-firm, then the given operations. */
export function firstUpdate(operations: readonly UpdateOperation[] = [], init: Omit<UpdateInit, 'operations' | 'updateCounter'> = {}): SignedLicenseBody<UpdateBody> {
  return signedUpdate({ ...init, updateCounter: 0, operations: [{ op: 'create-firm', text: 'ACME Software' }, ...operations] });
}

export function timeCertificate(init: Omit<UpdateInit, 'operations' | 'updateCounter'> & { readonly resetClock?: boolean; readonly nonce?: number } = {}): SignedLicenseBody<TimeBody> {
  const licensor = init.licensor ?? LICENSOR;
  return signLicenseBody<TimeBody>({
    kind: 'time', serial: init.serial ?? CARD_SERIAL, licensorKey: licensor.publicKey, firmCode: init.firmCode ?? FIRM_CODE, time: init.time ?? T0,
    nonce: new Uint8Array(16).fill(init.nonce ?? 1), resetClock: init.resetClock ?? false,
  }, licensor);
}

/** The file (and wire) form of a signed body. */
export const updateFile = (signed: SignedLicenseBody): string => encodeSignedBody(signed);

/** A product item as the card holds it. */
export function productItem(spec: ProductSpec, card: Partial<Pick<ProductItem, 'unitsUsed' | 'firstUse' | 'userData'>> = {}): ProductItem {
  return { ...spec, unitsUsed: card.unitsUsed ?? 0, userData: card.userData ?? new Uint8Array(0), ...(card.firstUse === undefined ? {} : { firstUse: card.firstUse }) };
}

/** A container holding one firm item of LICENSOR with the given products. */
export function containerWith(products: readonly ProductItem[], firm: Partial<FirmItem> = {}, clock = T0): LicenseContainer {
  return {
    clock,
    firms: [{ licensorKey: LICENSOR.publicKey, firmCode: FIRM_CODE, text: 'ACME Software', updateCounter: 1, certifiedTime: T0, products, ...firm }],
  };
}

/** Freezes a container and everything in it but its byte arrays, so a test notices any change made in place. */
export function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !(value instanceof Uint8Array)) {
    for (const entry of Object.values(value)) deepFreeze(entry);
    Object.freeze(value);
  }
  return value;
}

export interface RunningLicenseAgent {
  /** The rental server's socket, which answers the license ops. */
  readonly socket: string;
  /** The card as its binding names it. */
  readonly root: { readonly publicKey: Uint8Array; readonly serial: string; readonly keyMode: 'individual' };
  readonly trail: string;
  /** Applies `updates` and stores LICENSOR's card binding, as `vsc license activate` does. */
  activate(...updates: readonly SignedLicenseBody[]): Promise<void>;
  close(): Promise<void>;
}

let agentReaders = 0;

/**
 * A machine's license agent for unit tests: the real VSC and license applets on a software card in the in-process card
 * OS, a real RentalServer with its trail in a temporary directory, its socket with the license ops.
 */
export async function startLicenseAgent(serial = CARD_SERIAL, options: { readonly backups?: LicenseBackupsOptions } = {}): Promise<RunningLicenseAgent> {
  const { mkdtempSync, rmSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const { CardOs, SoftwareVscCard, VscApplet } = await import('../../src/apdu/index.js');
  const { generateEd25519Seed } = await import('../../src/crypto/index.js');
  const { AgentLicenseLink, LicenseApplet, licenseExtensions, MemoryLicenseStore, signCardBinding } = await import('../../src/license/index.js');
  const { establishContext, ReaderSystem, SCARD_PROTOCOL_T1, SCARD_SHARE_SHARED } = await import('../../src/reader-driver/index.js');
  const { claimRentalSocket, handleCardAccess, RentalListener, RentalServer } = await import('../../src/rental/index.js');
  const dir = mkdtempSync(join(tmpdir(), 'vsc-license-agent-'));
  const card = new SoftwareVscCard({ serial, keyMode: 'individual', key: ed25519KeyFromSeed(generateEd25519Seed()), counter: 0n });
  const system = new ReaderSystem();
  const name = `License Agent Reader ${agentReaders++}`;
  system.addReader(name).insert(new CardOs([new VscApplet(card), new LicenseApplet(card, { store: new MemoryLicenseStore() })]));
  const handle = await establishContext(system).connect(name, SCARD_SHARE_SHARED, SCARD_PROTOCOL_T1);
  const server = await RentalServer.open({ card: handleCardAccess(handle), directory: join(dir, 'trail') });
  const socket = join(dir, 'rental.sock');
  await claimRentalSocket(socket);
  const listener = await RentalListener.listen(socket, server, licenseExtensions(server, join(dir, 'trail'), options.backups === undefined ? {} : { backups: options.backups }));
  const root = { publicKey: card.publicKey, serial, keyMode: 'individual' as const };
  return {
    socket, root, trail: join(dir, 'trail', 'trail.jsonl'),
    async activate(...updates) {
      const link = await AgentLicenseLink.connect(socket);
      try {
        for (const update of updates) await link.apply(encodeSignedBody(update));
        await link.bind(signCardBinding(LICENSOR, { serial, cardPublicKey: card.publicKey, keyMode: 'individual' }));
      } finally {
        await link.close();
      }
    },
    async close() {
      await listener.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
