// The rows of Wibu 002 Table 1 that are not a property of one product item alone: build() gives the item's spec, and
// the license server (seats, standby, overflow, borrowing), the issuing service (volume, transfer) or the program
// (grace period) enforces the rest.
import { base, MAX_HOURS, SEATS, seats, days, standbySeconds, type LicenseModelTable } from './license-model-entry.js';
import { checkChoice, checkTime, checkWhole } from './license-model-options.js';

export type ServedModelName = 'network' | 'grace-period' | 'volume' | 'high-availability' | 'hot-standby' | 'cold-standby' | 'overflow' | 'borrowable' | 'transferable';

export const SERVED_MODELS: LicenseModelTable<ServedModelName> = {
  network: {
    title: 'Network License',
    description: 'The license is stored on a license server in the network and used by PCs as a floating license.',
    servedBy: 'license-server',
    note: 'licenseQuantity = seats (overflowSeats adds an overflow rule); the network license server hands the seats out as leases.',
    options: [SEATS, { key: 'overflowSeats', kind: 'whole', required: false, help: 'seats beyond the quantity, logged' }],
    build: (options) => ({
      ...base(options, 'Network License'), licenseQuantity: seats(options),
      ...(options.overflowSeats === undefined ? {} : { overflow: { seats: checkWhole(options.overflowSeats, 'overflowSeats', 1, 100_000) } }),
    }),
  },
  'grace-period': {
    title: 'Grace Period License',
    description: 'The software can be used for a limited time without activation; after that, activation is needed.',
    servedBy: 'program',
    note: 'The grace period is the program\'s: before its first activation the container has no item for it (decideUse says no-license), so the program runs for its N days on its own record of its first start. build() gives the item the activation then delivers.',
    options: [],
    build: (options) => base(options, 'Grace Period License'),
  },
  volume: {
    title: 'Volume License',
    description: 'A key account receives many licenses for many seats; each computer is activated, or the use is policed by audit.',
    servedBy: 'issuing-service',
    note: 'The volume is the ticket\'s quantity of activations at the issuing service; each computer gets this item. policing=audit makes it postpaid so every use is counted on the card and signed in the trail for the audit.',
    options: [{ key: 'policing', kind: 'choice', required: true, choices: ['activation', 'audit'], help: 'activation or audit' }],
    build: (options) => {
      const policing = checkChoice(options.policing, 'policing', ['activation', 'audit'] as const);
      return { ...base(options, 'Volume License'), ...(policing === 'audit' ? { payment: 'postpaid' as const } : {}) };
    },
  },
  'high-availability': {
    title: 'High Availability License',
    description: 'Redundant license servers ("2 out of 3"): the software stays available when one server fails.',
    servedBy: 'license-server',
    note: 'The same item (licenseQuantity = seats) on three license servers; a client holds a seat when two of the three grant it.',
    options: [SEATS],
    build: (options) => ({ ...base(options, 'High Availability License'), licenseQuantity: seats(options) }),
  },
  'hot-standby': {
    title: 'Hot Standby License',
    description: 'A second license server takes over automatically when the main one fails; its use is logged and limited.',
    servedBy: 'license-server',
    note: 'standby = { kind: hot, maxSeconds = maxHours } on the standby server\'s item; clients fail over to it automatically.',
    options: [SEATS, MAX_HOURS],
    build: (options) => ({ ...base(options, 'Hot Standby License'), licenseQuantity: seats(options), standby: { kind: 'hot', maxSeconds: standbySeconds(options) } }),
  },
  'cold-standby': {
    title: 'Cold Standby License',
    description: 'A second license server or an emergency dongle can be put into use when the main server fails; its use is logged and limited.',
    servedBy: 'license-server',
    note: 'standby = { kind: cold, maxSeconds = maxHours }; the standby serves only once an operator started it as active.',
    options: [SEATS, MAX_HOURS],
    build: (options) => ({ ...base(options, 'Cold Standby License'), licenseQuantity: seats(options), standby: { kind: 'cold', maxSeconds: standbySeconds(options) } }),
  },
  overflow: {
    title: 'Overflow License',
    description: 'More seats than bought may be used; the excess is logged, limited in time and number, and billed.',
    servedBy: 'license-server',
    note: 'licenseQuantity = seats, overflow = { seats: overflowSeats, until? }; each overflow seat is a trail record to bill.',
    options: [SEATS, { key: 'overflowSeats', kind: 'whole', required: true, help: 'seats beyond the quantity' }, { key: 'until', kind: 'time', required: false, help: 'when overflow ends' }],
    build: (options) => ({
      ...base(options, 'Overflow License'), licenseQuantity: seats(options),
      overflow: { seats: checkWhole(options.overflowSeats, 'overflowSeats', 1, 100_000), ...(options.until === undefined ? {} : { until: checkTime(options.until, 'until') }) },
    }),
  },
  borrowable: {
    title: 'Borrowable License',
    description: 'A seat may be borrowed from the license server for offline use for a fixed time; it comes back by itself.',
    servedBy: 'license-server',
    note: 'licenseQuantity = seats, maxBorrowSeconds = maxBorrowDays; the server signs a borrow certificate for the borrowing card.',
    options: [SEATS, { key: 'maxBorrowDays', kind: 'whole', required: true, help: 'longest borrow in days' }],
    build: (options) => ({ ...base(options, 'Borrowable License'), licenseQuantity: seats(options), maxBorrowSeconds: days(options.maxBorrowDays, 'maxBorrowDays') }),
  },
  transferable: {
    title: 'Transferable License',
    description: 'The license may be moved for good to another computer or dongle, online or offline.',
    servedBy: 'issuing-service',
    note: 'A single-seat item; the issuing service moves it: a delete update for the old container, whose receipt frees the ticket for an activation on the new one (online or through files).',
    options: [],
    build: (options) => base(options, 'Transferable License'),
  },
};
