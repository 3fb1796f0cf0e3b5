// End-to-end helpers around PKCS#11 as users drive it: OpenSC's pkcs11-tool over OpenSC's module (the
// PIV card) or SoftHSM2's (a software token), openssl to check the signatures, and a throwaway SoftHSM2 token.
import { execFile, execFileSync } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { VscError } from '../../src/errors/index.js';
import { E2E_INSTALL_COMMAND } from './opensc.js';

export { E2E_INSTALL_COMMAND };


const OPENSC_MODULE_PATHS = [
  '/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so',
  '/usr/lib/aarch64-linux-gnu/opensc-pkcs11.so',
  '/usr/lib64/opensc-pkcs11.so',
  '/usr/lib/opensc-pkcs11.so',
  '/usr/local/lib/opensc-pkcs11.so',
  '/Library/OpenSC/lib/opensc-pkcs11.so',
];
const SOFTHSM_MODULE_PATHS = [
  '/usr/lib/softhsm/libsofthsm2.so',
  '/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so',
  '/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so',
  '/usr/lib64/pkcs11/libsofthsm2.so',
  '/usr/local/lib/softhsm/libsofthsm2.so',
];
/** Arguments that carry secrets: their values never reach an error message. */
const SECRET_FLAGS = new Set(['-p', '--pin', '--so-pin', '--puk', '--new-pin']);

export class E2eToolError extends VscError {
  override readonly name = 'E2eToolError';
  /** The PKCS#11 return value pkcs11-tool named ("CKR_PIN_LOCKED"), if it named one. */
  readonly ckr: string | undefined;
  constructor(
    message: string,
    readonly status: number | string | null,
    readonly stdout: string,
    readonly stderr: string,
    options: { cause?: unknown } = {},
  ) {
    super('e2e.tool-failed', message, options);
    this.ckr = parseCkr(stderr);
  }
}

export interface RunResult {
  readonly stdout: string;
  readonly stderr: string;
  readonly status: number;
}

export interface RunOptions {
  readonly timeoutMs?: number;
  /** Added to this process's environment. */
  readonly env?: Readonly<Record<string, string>>;
  /** Exit statuses that count as success besides 0 (piv-tool -C exits with the certificate length). */
  readonly okStatus?: (status: number) => boolean;
}

function redact(args: readonly string[]): string {
  return args.map((arg, i) => (i > 0 && SECRET_FLAGS.has(args[i - 1]!) ? '***' : arg)).join(' ');
}

/** Runs a program without a shell; rejects with an E2eToolError that quotes its output (secrets redacted from the command). */
export function run(file: string, args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  const { timeoutMs = 30_000, env, okStatus = () => false } = options;
  return new Promise((resolve, reject) => {
    const childEnv = env === undefined ? process.env : { ...process.env, ...env };
    execFile(file, args, { timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 8 * 1024 * 1024, env: childEnv }, (error, stdout, stderr) => {
      const status = error === null ? 0 : typeof error.code === 'number' ? error.code : null;
      if (status !== null && (status === 0 || okStatus(status))) {
        resolve({ stdout, stderr, status });
        return;
      }
      const errno = (error as NodeJS.ErrnoException | null)?.code;
      const why =
        errno === 'ENOENT'
          ? `${file} is not installed (${E2E_INSTALL_COMMAND})`
          : error?.killed === true
            ? `timed out after ${timeoutMs} ms`
            : `exit status ${String(error?.code ?? error?.signal)}`;
      const output = [stderr.trim(), stdout.trim()].filter((text) => text.length > 0).join('\n');
      reject(new E2eToolError(`${file} ${redact(args)}: ${why}${output.length > 0 ? `\n${output}` : ''}`, status ?? error?.signal ?? null, stdout, stderr, { cause: error }));
    });
  });
}

// ---- Modules -------------------------------------------------------------------------------------

function firstReadable(paths: readonly string[]): string | undefined {
  return paths.find((path) => {
    try {
      accessSync(path, constants.R_OK);
      return true;
    } catch {
      return false;
    }
  });
}

/** Files of a Debian package that end with `suffix` (none when dpkg or the package is missing). */
function dpkgFiles(pkg: string, suffix: string): string[] {
  try {
    const listing = execFileSync('dpkg', ['-L', pkg], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 10_000 });
    return listing.split('\n').filter((line) => line.endsWith(suffix));
  } catch {
    return [];
  }
}

/** OpenSC's PKCS#11 module: the package's own file list first, then the usual places. */
export function findOpenscModule(): string | undefined {
  return firstReadable([...dpkgFiles('opensc-pkcs11', '/opensc-pkcs11.so'), ...OPENSC_MODULE_PATHS]);
}

export function findSoftHsmModule(): string | undefined {
  return firstReadable([...dpkgFiles('libsofthsm2', '/libsofthsm2.so'), ...SOFTHSM_MODULE_PATHS]);
}

function required(path: string | undefined, what: string, pkg: string): string {
  if (path === undefined) throw new E2eToolError(`expected ${what} to be installed, found none; install package ${pkg}: ${E2E_INSTALL_COMMAND}`, null, '', '');
  return path;
}

export const requireOpenscModule = (): string => required(findOpenscModule(), "OpenSC's PKCS#11 module opensc-pkcs11.so", 'opensc-pkcs11 (pulled in by opensc)');
export const requireSoftHsmModule = (): string => required(findSoftHsmModule(), "SoftHSM2's PKCS#11 module libsofthsm2.so", 'softhsm2');

// ---- pkcs11-tool ---------------------------------------------------------------------------------

/** A token as pkcs11-tool reaches it. */
export interface Pkcs11Token {
  readonly module: string;
  /** pkcs11-tool arguments that pick the token: ['--slot-description', 'Virtual PCD 00 00'] or ['--token-label', 'bench']. */
  readonly select: readonly string[];
  /** Environment the module needs (SOFTHSM2_CONF, OPENSC_CONF). */
  readonly env?: Readonly<Record<string, string>>;
}

/** The CKR_* name in pkcs11-tool's "error: PKCS11 function C_Login failed: rv = CKR_PIN_INCORRECT (0xa0)". */
export function parseCkr(stderr: string): string | undefined {
  return /\brv = (CKR_[A-Z0-9_]+)/.exec(stderr)?.[1];
}

export function pkcs11Tool(token: Pkcs11Token, args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  return run('pkcs11-tool', ['--module', token.module, ...token.select, ...args], { ...options, env: { ...token.env, ...options.env } });
}

export type Pkcs11ObjectKind = 'private-key' | 'public-key' | 'secret-key' | 'certificate' | 'data' | 'profile';

export interface Pkcs11Object {
  readonly kind: Pkcs11ObjectKind;
  /** "EC", "RSA", … for keys; "X.509 cert" for certificates. */
  readonly type: string | undefined;
  readonly label: string | undefined;
  /** CKA_ID as lower-case hex. */
  readonly id: string | undefined;
  readonly usage: readonly string[];
  readonly access: readonly string[];
  /** Certificate subject as pkcs11-tool prints it (RFC 2253, "CN=PIV Authentication"). */
  readonly subject: string | undefined;
}

const OBJECT_HEADERS: readonly [RegExp, Pkcs11ObjectKind][] = [
  [/^Private Key Object(?:; (\S+))?/, 'private-key'],
  [/^Public Key Object(?:; (\S+))?/, 'public-key'],
  [/^Secret Key Object(?:; (\S+))?/, 'secret-key'],
  [/^Certificate Object; type = (.+)$/, 'certificate'],
  [/^Data object \d+/, 'data'],
  [/^Profile object \d+/, 'profile'],
];

/**
 * Parses `pkcs11-tool -O`: each object opens with an unindented header ("Private Key Object; EC",
 * "Certificate Object; type = X.509 cert", "Data object 123"), then indented "name: value" lines.
 */
export function parseObjectList(stdout: string): Pkcs11Object[] {
  const objects: Pkcs11Object[] = [];
  let current: { kind: Pkcs11ObjectKind; type?: string; fields: Map<string, string> } | undefined;
  const flush = (): void => {
    if (current === undefined) return;
    const list = (name: string): string[] => (current!.fields.get(name) ?? '').split(',').map((word) => word.trim()).filter((word) => word.length > 0 && word !== 'none');
    const label = current.fields.get('label');
    objects.push(
      Object.freeze({
        kind: current.kind,
        type: current.type,
        // Data objects quote their label: "label:          'Card Capability Container'".
        label: label?.replace(/^'(.*)'$/, '$1'),
        id: current.fields.get('ID')?.toLowerCase(),
        usage: Object.freeze(list('Usage')),
        access: Object.freeze(list('Access')),
        subject: current.fields.get('subject')?.replace(/^DN: /, ''),
      }),
    );
    current = undefined;
  };
  for (const line of stdout.split('\n')) {
    if (line.trim().length === 0) continue;
    if (!/^\s/.test(line)) {
      flush();
      const header = OBJECT_HEADERS.map(([pattern, kind]) => [pattern.exec(line), kind] as const).find(([match]) => match !== null);
      if (header !== undefined) current = { kind: header[1], type: header[0]?.[1]?.trim(), fields: new Map() };
      continue;
    }
    const field = /^\s+([A-Za-z_][A-Za-z_ ]*?):\s*(.*)$/.exec(line);
    if (current !== undefined && field !== null && !current.fields.has(field[1]!)) current.fields.set(field[1]!, field[2]!.trim());
  }
  flush();
  return objects;
}

/** Lists the token's objects; with a PIN, logs in first so that private keys show too. */
export async function listObjects(token: Pkcs11Token, options: { pin?: string; type?: 'cert' | 'privkey' | 'pubkey' | 'data' } = {}): Promise<Pkcs11Object[]> {
  const login = options.pin === undefined ? [] : ['--login', '--pin', options.pin];
  const type = options.type === undefined ? [] : ['--type', options.type];
  const { stdout } = await pkcs11Tool(token, [...login, '--list-objects', ...type]);
  return parseObjectList(stdout);
}

/** Logs in with the user PIN (and lists the private keys, pkcs11-tool needs an action); rejects with the CKR_* on refusal. */
export async function login(token: Pkcs11Token, pin: string): Promise<void> {
  await pkcs11Tool(token, ['--login', '--pin', pin, '--list-objects', '--type', 'privkey']);
}

export interface TokenInfo {
  readonly slotDescription: string;
  readonly label: string | undefined;
  /** "login required", "user PIN locked", … */
  readonly flags: readonly string[];
}

/** Parses `pkcs11-tool -T`: "Slot 0 (0x0): Virtual PCD 00 00" blocks with "  token flags        : a, b" lines. */
export function parseTokenSlots(stdout: string): TokenInfo[] {
  const slots: { slotDescription: string; fields: Map<string, string> }[] = [];
  for (const line of stdout.split('\n')) {
    const slot = /^Slot \d+ \(0x[0-9a-fA-F]+\): (.*)$/.exec(line);
    if (slot !== null) {
      slots.push({ slotDescription: slot[1]!.trim(), fields: new Map() });
      continue;
    }
    const field = /^\s+(token [a-z ]+?)\s*: (.*)$/.exec(line);
    if (field !== null && slots.length > 0) slots[slots.length - 1]!.fields.set(field[1]!, field[2]!.trim());
  }
  return slots.map(({ slotDescription, fields }) =>
    Object.freeze({
      slotDescription,
      label: fields.get('token label'),
      flags: Object.freeze((fields.get('token flags') ?? '').split(',').map((flag) => flag.trim()).filter((flag) => flag.length > 0)),
    }),
  );
}

/** The token info of the slot `token.select` picks (pkcs11-tool -T lists every slot; the same prefix match picks one). */
export async function tokenInfo(token: Pkcs11Token): Promise<TokenInfo> {
  const { stdout } = await run('pkcs11-tool', ['--module', token.module, '--list-token-slots'], { env: token.env });
  const [flag, value = ''] = token.select;
  const slots = parseTokenSlots(stdout);
  const found = slots.find((slot) => (flag === '--token-label' ? (slot.label ?? '').startsWith(value) : slot.slotDescription.startsWith(value)));
  if (found === undefined) throw new E2eToolError(`expected a slot for ${token.select.join(' ')} in pkcs11-tool -T, got:\n${stdout}`, null, stdout, '');
  return found;
}

async function withTempDir<T>(body: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), 'vsc-pkcs11-'));
  try {
    return await body(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

export interface SignOptions {
  readonly pin: string;
  /** CKA_ID as hex ("01" is the PIV Authentication key 9A on OpenSC's PIV card). */
  readonly id: string;
  /** The hash to sign (CKM_ECDSA signs what it is given). */
  readonly digest: Uint8Array;
}

/** CKM_ECDSA over a digest; returns the signature DER-encoded (ECDSA-Sig-Value, RFC 3279), as openssl expects it. */
export async function signDigest(token: Pkcs11Token, options: SignOptions): Promise<Uint8Array> {
  if (options.digest.length < 1 || options.digest.length > 64) throw new RangeError(`expected a digest of 1..64 bytes, got ${options.digest.length}`);
  return withTempDir(async (dir) => {
    const input = join(dir, 'digest');
    const output = join(dir, 'signature.der');
    await writeFile(input, options.digest);
    await pkcs11Tool(token, ['--login', '--pin', options.pin, '--sign', '--mechanism', 'ECDSA', '--id', options.id, '--input-file', input, '--output-file', output, '--signature-format', 'openssl']);
    return new Uint8Array(await readFile(output));
  });
}

/** CKA_VALUE of an object: a certificate's DER, or a public key as DER SubjectPublicKeyInfo. */
export async function readObject(token: Pkcs11Token, type: 'cert' | 'pubkey', id: string): Promise<Uint8Array> {
  return withTempDir(async (dir) => {
    const output = join(dir, `${type}.der`);
    await pkcs11Tool(token, ['--read-object', '--type', type, '--id', id, '--output-file', output]);
    return new Uint8Array(await readFile(output));
  });
}

/**
 * OpenSC's module unblocks the user PIN only when its configuration allows it (pin_unblock_style,
 * default none). This configuration allows C_SetPIN(PUK, new PIN) in a session that is not logged in.
 */
export const OPENSC_UNBLOCK_CONF = 'app default {\n\tpkcs11 {\n\t\tuser_pin_unblock_style = set_pin_in_unlogged_session;\n\t}\n}\n';

/** Writes OPENSC_UNBLOCK_CONF into `dir` and returns the environment that points OpenSC at it. */
export async function openscUnblockEnv(dir: string): Promise<Record<string, string>> {
  const path = join(dir, 'opensc-unblock.conf');
  await writeFile(path, OPENSC_UNBLOCK_CONF);
  return { OPENSC_CONF: path };
}

/** C_SetPIN with the PUK in a session that is not logged in (pkcs11-tool --unlock-pin). */
export async function unlockPin(token: Pkcs11Token, puk: string, newPin: string): Promise<void> {
  await pkcs11Tool(token, ['--unlock-pin', '--puk', puk, '--new-pin', newPin]);
}

// ---- openssl -------------------------------------------------------------------------------------

function pem(label: string, der: Uint8Array): string {
  const base64 = Buffer.from(der).toString('base64').replace(/.{1,64}/g, '$&\n');
  return `-----BEGIN ${label}-----\n${base64}-----END ${label}-----\n`;
}

function unpem(text: string, label: string): Uint8Array {
  const match = new RegExp(`-----BEGIN ${label}-----([A-Za-z0-9+/=\\s]+)-----END ${label}-----`).exec(text);
  if (match === null) throw new TypeError(`expected a PEM "${label}" block, got ${JSON.stringify(text.slice(0, 80))}`);
  return new Uint8Array(Buffer.from(match[1]!.replace(/\s/g, ''), 'base64'));
}

/** `openssl pkeyutl -verify`: true when the DER ECDSA signature over `digest` verifies under the SPKI key, false when openssl says it does not. */
export async function opensslVerifyDigest(publicKeySpki: Uint8Array, signature: Uint8Array, digest: Uint8Array): Promise<boolean> {
  return withTempDir(async (dir) => {
    const [key, sig, input] = [join(dir, 'pub.pem'), join(dir, 'sig.der'), join(dir, 'digest')];
    await Promise.all([writeFile(key, pem('PUBLIC KEY', publicKeySpki)), writeFile(sig, signature), writeFile(input, digest)]);
    try {
      const { stdout } = await run('openssl', ['pkeyutl', '-verify', '-pubin', '-inkey', key, '-sigfile', sig, '-in', input]);
      return /Signature Verified Successfully/.test(stdout);
    } catch (error) {
      if (error instanceof E2eToolError && /Signature Verification Failure/.test(error.stdout + error.stderr)) return false;
      throw error;
    }
  });
}

/** The SubjectPublicKeyInfo (DER) of a DER certificate, as `openssl x509 -pubkey` extracts it. */
export async function opensslCertificatePublicKey(certificate: Uint8Array): Promise<Uint8Array> {
  return withTempDir(async (dir) => {
    const input = join(dir, 'cert.der');
    await writeFile(input, certificate);
    const { stdout } = await run('openssl', ['x509', '-inform', 'DER', '-in', input, '-pubkey', '-noout']);
    return unpem(stdout, 'PUBLIC KEY');
  });
}

/**
 * A PEM certificate for `publicKeySpki` with subject `/CN=...`, signed by a throwaway key
 * (`openssl x509 -new -force_pubkey`): enough for OpenSC, which shows a PIV key only when a
 * certificate object carries its public key, and never checks the certificate's signature.
 */
export async function opensslCertificateFor(publicKeySpki: Uint8Array, subject: string): Promise<string> {
  return withTempDir(async (dir) => {
    const [signer, key, cert] = [join(dir, 'signer.pem'), join(dir, 'pub.pem'), join(dir, 'cert.pem')];
    await writeFile(key, pem('PUBLIC KEY', publicKeySpki));
    await run('openssl', ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', signer]);
    await run('openssl', ['x509', '-new', '-subj', subject, '-key', signer, '-force_pubkey', key, '-days', '2', '-out', cert]);
    return readFile(cert, 'utf8');
  });
}

// ---- SoftHSM2 token --------------------------------------------------------------------------------

export interface SoftHsmToken extends Pkcs11Token {
  readonly dir: string;
  readonly pin: string;
  /** CKA_ID of the P-256 key pair the fixture generated. */
  readonly keyId: string;
  /** Deletes the token directory. */
  close(): Promise<void>;
}

export interface SoftHsmOptions {
  readonly label?: string;
  readonly pin?: string;
  readonly soPin?: string;
}

/** A fresh SoftHSM2 token in its own directory (SOFTHSM2_CONF), holding one P-256 key pair with id 01. */
export async function createSoftHsmToken(options: SoftHsmOptions = {}): Promise<SoftHsmToken> {
  const { label = 'bench', pin = '123456', soPin = '12345678' } = options;
  const module = requireSoftHsmModule();
  const dir = await mkdtemp(join(tmpdir(), 'vsc-softhsm-'));
  try {
    const conf = join(dir, 'softhsm2.conf');
    const tokens = join(dir, 'tokens');
    await mkdir(tokens);
    await writeFile(conf, `directories.tokendir = ${tokens}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n`);
    const env = { SOFTHSM2_CONF: conf };
    await run('softhsm2-util', ['--init-token', '--free', '--label', label, '--pin', pin, '--so-pin', soPin], { env });
    const token: Pkcs11Token = { module, select: ['--token-label', label], env };
    await pkcs11Tool(token, ['--login', '--pin', pin, '--keypairgen', '--key-type', 'EC:prime256v1', '--id', '01', '--label', `${label} key`]);
    return Object.freeze({ ...token, dir, pin, keyId: '01', close: () => rm(dir, { recursive: true, force: true }) });
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
}

// ---- The quickack loopback address ----------------------------------------------------------------

export interface VpcdHost {
  /** Where the card should connect to vpcd. */
  readonly host: string;
  readonly quickack: boolean;
  /** Why the quickack route is not used, when it is not. */
  readonly note: string | undefined;
  /** Deletes the route if this call added it; a route that was already there stays. */
  release(): Promise<void>;
}

const QUICKACK_ADDRESS = '127.0.0.2';

/**
 * Debian 12's vpcd stalls each APDU ~40 ms on the card side's delayed ACK; a loopback route with
 * `quickack 1` for an address of its own removes the stall (BENCHMARKS.md). Uses an existing route,
 * else adds one (root and iproute2), else falls back to 127.0.0.1: slower, never wrong.
 * VSC_E2E_QUICKACK=0 forces the fallback.
 */
export async function vpcdHostWithQuickack(): Promise<VpcdHost> {
  const fallback = (note: string): VpcdHost => Object.freeze({ host: '127.0.0.1', quickack: false, note, release: async () => undefined });
  if (process.env['VSC_E2E_QUICKACK'] === '0') return fallback('VSC_E2E_QUICKACK=0');
  const route = ['local', `${QUICKACK_ADDRESS}/32`, 'dev', 'lo', 'table', 'local'];
  let existing: string;
  try {
    ({ stdout: existing } = await run('ip', ['route', 'show', 'table', 'local', `${QUICKACK_ADDRESS}/32`], { timeoutMs: 5_000 }));
  } catch (error) {
    return fallback(`no quickack route: ${(error as Error).message.split('\n')[0]}`);
  }
  if (/\bquickack 1\b/.test(existing)) return Object.freeze({ host: QUICKACK_ADDRESS, quickack: true, note: undefined, release: async () => undefined });
  if (existing.trim().length > 0) return fallback(`a route for ${QUICKACK_ADDRESS} without quickack exists; left alone: ${existing.trim()}`);
  if (process.getuid?.() !== 0) return fallback('no quickack route: adding one needs root');
  try {
    await run('ip', ['route', 'add', ...route, 'quickack', '1'], { timeoutMs: 5_000 });
  } catch (error) {
    return fallback(`no quickack route: ${(error as Error).message.split('\n')[0]}`);
  }
  let added = true;
  return Object.freeze({
    host: QUICKACK_ADDRESS,
    quickack: true,
    note: undefined,
    async release() {
      if (!added) return;
      added = false;
      await run('ip', ['route', 'del', ...route], { timeoutMs: 5_000 });
    },
  });
}
