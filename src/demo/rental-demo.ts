// The software rental part of `npm run demo` (patent 003): a vendor, a keyfile for the example rented program on a
// card in the in-process reader, the rental server owning card and trail, the program run until its threshold stops
// it, and the backup-and-restore cheat ([0025]) refused. Every line reports what really happened.
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CardOs, SoftwareVscCard, VscApplet } from '../apdu/index.js';
import { toHex, utf8 } from '../bytes/index.js';
import { ed25519KeyFromSeed, generateEd25519Seed } from '../crypto/index.js';
import { establishContext, ReaderSystem, SCARD_PROTOCOL_T1, SCARD_SHARE_SHARED } from '../reader-driver/index.js';
import {
  claimRentalSocket, closeVendor, createKeyfile, handleCardAccess, initVendor, openVendor, prepareRentalSocketPath, Rental, RentalListener, RentalServer,
  type RentalDecision,
} from '../rental/index.js';
import type { Story } from './story.js';

const READER = 'VSC Virtual Reader 03';
const SERIAL = 'DEMO-RENT-1';
const PROGRAM = 'wc-rented';

function outcome(decision: RentalDecision): string {
  if (!decision.allowed) return `limited mode (${decision.denial}): ${decision.reason}`;
  return `runs in full; ${decision.usage.executions} execution(s) recorded so far`;
}

export async function rentalStory(story: Story): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'vsc-demo-rental-'));
  const system = new ReaderSystem();
  const context = establishContext(system);
  let listener: RentalListener | undefined;
  try {
    story.heading('Software rental: a vendor, a keyfile, and the audit trail on the card (patent 003)');
    const vendorDir = join(dir, 'vendor');
    // The demo's vendor password is fixed; real use reads it from a prompt or a 0600 file.
    const vendorPublic = await initVendor(vendorDir, 'Example Software', utf8('demo vendor password'));
    story.line(`$ vsc vendor init --data ${vendorDir}   → vendor key ${toHex(vendorPublic.signingKey).slice(0, 16)}… (built into the rented program)`);
    const card = new SoftwareVscCard({ serial: SERIAL, keyMode: 'individual', key: ed25519KeyFromSeed(generateEd25519Seed()), counter: 0n });
    system.addReader(READER).insert(new CardOs([new VscApplet(card)]));
    const vendor = await openVendor(vendorDir, utf8('demo vendor password'));
    let keyfile: Uint8Array;
    try {
      keyfile = createKeyfile(vendor, {
        program: PROGRAM, card: { serial: SERIAL, publicKey: card.publicKey, keyMode: 'individual', kind: 'software' }, offset: 0n,
        acceptedKinds: ['software'], rights: ['per-file'], thresholds: ['executions<=2'],
      });
    } finally {
      closeVendor(vendor);
    }
    story.line(`$ vsc keyfile create --program ${PROGRAM} --threshold 'executions<=2' --right per-file --accept-software-keys ...`);
    story.line(`keyfile for card ${SERIAL}: ${keyfile.length.toLocaleString('en-US')} bytes, vendor-signed, the card's public key as trust root, trail from counter 0`);
    story.line('(this card\'s key is in software, so its owner could forge a trail: real keyfiles accept server-held or token cards, attested)');

    story.heading('The rental server owns the card and the trail; the program charges each run');
    const trailDir = join(dir, 'trail');
    const server = await RentalServer.open({ card: handleCardAccess(await context.connect(READER, SCARD_SHARE_SHARED, SCARD_PROTOCOL_T1)), directory: trailDir, backupDirectory: join(dir, 'backup') });
    const socket = await prepareRentalSocketPath(join(dir, 'run', 'rental.sock'));
    await claimRentalSocket(socket);
    listener = await RentalListener.listen(socket, server);
    story.line(`$ vsc rental serve --reader "${READER}" --trail ${trailDir} --backup-trail ${join(dir, 'backup')}`);
    const run = async (label: string): Promise<RentalDecision> => {
      const rental = await Rental.open({ keyfile, vendorKey: vendorPublic.signingKey, program: PROGRAM, socket });
      try {
        const decision = await rental.charge('execution');
        story.line(`${label}: ${outcome(decision)}`);
        return decision;
      } finally {
        await rental.close();
      }
    };
    await run('run 1');
    const backup = join(dir, 'trail-after-run-1.jsonl');
    copyFileSync(server.trailPath, backup);
    story.line(`(the customer copies the trail now, to restore it later: ${backup})`);
    await run('run 2');
    await run('run 3');

    story.heading('Backup and restore gains nothing: the card\'s counter has moved on');
    copyFileSync(backup, server.trailPath);
    story.line('the trail from after run 1 is copied back over the current one');
    await run('run 4');
    story.line('every record is signed with the card\'s counter, which never goes back: the restored trail is stale ([0025], [0050])');
  } finally {
    await listener?.close();
    await context.release();
    rmSync(dir, { recursive: true, force: true });
  }
}
