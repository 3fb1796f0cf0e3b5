// The license container part of `npm run demo` (Wibu 002; DESIGN.md "License containers"): a licensor's issuing
// service over HTTP, an order becoming a ticket, the ticket activated into the container of a card in the in-process
// reader through the machine's license agent, a pay-per-use product counted down use by use through SIGN AND
// INCREMENT, a clock set back refused, and the usage reproduced from the trail. Every line reports what really happened.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CardOs, SoftwareVscCard, VscApplet } from '../apdu/index.js';
import { toHex } from '../bytes/index.js';
import { ed25519KeyFromSeed, generateEd25519Seed } from '../crypto/index.js';
import {
  addLicensor, AgentLicenseLink, IssuingClient, License, LicenseApplet, licenseExtensions, licenseUsageReport, MemoryLicenseStore, openIssuingBackend, parseCardBinding,
  startIssuingService, type LicenseDecision,
} from '../license/index.js';
import { establishContext, ReaderSystem, SCARD_PROTOCOL_T1, SCARD_SHARE_SHARED } from '../reader-driver/index.js';
import { claimRentalSocket, handleCardAccess, prepareRentalSocketPath, RentalListener, RentalServer } from '../rental/index.js';
import type { Story } from './story.js';

const READER = 'VSC Virtual Reader 04';
const SERIAL = 'DEMO-LIC-1';

function outcome(decision: LicenseDecision): string {
  return decision.allowed ? `allowed, ${decision.remaining} left (card-signed record at counter ${decision.record.counter})` : `refused (${decision.reason}): ${decision.message}`;
}

export async function licenseStory(story: Story): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'vsc-demo-license-'));
  const backend = await openIssuingBackend({ dataDir: join(dir, 'issuing') });
  const service = await startIssuingService({ backend, host: '127.0.0.1', port: 0 });
  let listener: RentalListener | undefined;
  try {
    story.heading('License containers: a licensor\'s issuing service, an order, a ticket (Wibu 002)');
    const { licensor, apiKey } = await addLicensor(backend, { name: 'ACME Software', firmCode: 10101 });
    story.line(`$ vsc license licensor add --name "ACME Software" --firm-code 10101   → licensor key ${toHex(licensor.publicKey).slice(0, 16)}… (built into its programs)`);
    story.line(`$ vsc license serve   → ${service.url} (GET /openapi.json describes it)`);
    const back = new IssuingClient({ server: service.url, apiKey });
    await back.defineProduct({ code: 7, text: 'Report export', template: { featureMap: 1, unitLimit: 3, payment: 'prepaid' } });
    const { tickets } = await back.placeOrder({ orderId: 'ERP-2026-0001', items: [{ productCode: 7, quantity: 1 }] });
    story.line('$ vsc license product define --code 7 --model pay-per-use ...; vsc license order --order-id ERP-2026-0001 --product 7');
    story.line(`ticket for the customer: ${tickets[0]!.slice(0, 5)}-… (a credential: printed or mailed, never logged)`);

    story.heading('The customer activates the ticket into the container on the card');
    const card = new SoftwareVscCard({ serial: SERIAL, keyMode: 'individual', key: ed25519KeyFromSeed(generateEd25519Seed()), counter: 0n });
    const system = new ReaderSystem();
    system.addReader(READER).insert(new CardOs([new VscApplet(card), new LicenseApplet(card, { store: new MemoryLicenseStore() })]));
    const handle = await establishContext(system).connect(READER, SCARD_SHARE_SHARED, SCARD_PROTOCOL_T1);
    const trailDir = join(dir, 'trail');
    const server = await RentalServer.open({ card: handleCardAccess(handle), directory: trailDir });
    const socket = await prepareRentalSocketPath(join(dir, 'run', 'rental.sock'));
    await claimRentalSocket(socket);
    listener = await RentalListener.listen(socket, server, licenseExtensions(server, trailDir));
    story.line(`$ vsc rental serve --reader "${READER}" --trail ${trailDir}   (the machine's license agent: it owns the card and the trail)`);
    const customer = new IssuingClient({ server: service.url });
    const link = await AgentLicenseLink.connect(socket);
    try {
      const answer = await customer.activate({ ticket: tickets[0]!, serial: SERIAL, cardPublicKey: card.publicKey, firmUpdateCounter: null, requestId: Uint8Array.from(randomBytes(16)) });
      await link.bind(parseCardBinding(answer.binding!));
      const receipt = await link.apply(answer.update);
      const confirmed = await customer.receipt({ ticket: tickets[0]!, serial: SERIAL, record: receipt });
      story.line('$ vsc license activate --server ... --ticket-file ticket.txt');
      story.line(`the licensor's signed update applied on the card; its receipt in the trail: "${receipt.text.slice(0, 60)}…"; the service says ${confirmed.state}`);
    } finally {
      await link.close();
    }

    story.heading('A program uses the product: the card decides, counts and signs each use');
    const day = Math.floor(Date.now() / 1000);
    const clock = { now: day };
    const license = await License.open({ licensorKey: licensor.publicKey, productCode: 7, socket, clock: () => clock.now });
    try {
      for (let use = 1; use <= 4; use++) story.line(`use ${use}: ${outcome(await license.use(1, 1))}`);
      await license.close();
      clock.now -= 86_400;
      const back1 = await License.open({ licensorKey: licensor.publicKey, productCode: 7, socket, clock: () => clock.now });
      story.line(`with the computer's clock set back a day: ${outcome(await back1.check(1))}`);
      await back1.close();
    } finally {
      await license.close();
    }
    const report = await licenseUsageReport(join(trailDir, 'trail.jsonl'), { publicKey: card.publicKey, serial: SERIAL, keyMode: 'individual' }, licensor.publicKey);
    const used = report.products[0];
    story.line(`$ vsc license report --licensor-key …   → from the trail: ${used?.uses ?? 0} uses, ${used?.units ?? 0} units of product 7, every record signed by the card`);
  } finally {
    await listener?.close();
    await service.close();
    await backend.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
