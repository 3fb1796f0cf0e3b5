// The rows of Wibu 002 Table 1 that a product item's options express and the container itself enforces (decideUse in
// license-decision.ts, on the card): single user ... country-based.
import { utf8 } from '../bytes/index.js';
import { base, days, PAY_PER_USE_UNIT_PREFIX, type LicenseModelTable } from './license-model-entry.js';
import { checkChoice, checkCountries, checkDigest, checkText, checkTime, checkWhole, MAX_MODEL_TIME, modelInput } from './license-model-options.js';
import { MAX_CODE, MAX_UNITS } from './license-model.js';

export type ContainerModelName =
  | 'single-user' | 'single-user-vm' | 'feature-on-demand' | 'perpetual' | 'demo-trial' | 'rental-subscription' | 'pay-per-use'
  | 'software-assurance' | 'downgrade-right' | 'upgrade-right' | 'named-user' | 'computer-bound' | 'time-zone' | 'country-based';

export const CONTAINER_MODELS: LicenseModelTable<ContainerModelName> = {
  'single-user': {
    title: 'Single User License',
    description: 'The license is stored in a local container; the software runs on the same computer.',
    servedBy: 'container',
    note: 'One seat in the container of the computer (an emulated, server-backed or dongle-backed card) the program runs beside.',
    options: [],
    build: (options) => base(options, 'Single User License'),
  },
  'single-user-vm': {
    title: 'Single User License in a Virtual Machine',
    description: 'The license is bound to a virtual machine: a copy of the machine loses it; a moved machine keeps it or not, as the licensor decides.',
    servedBy: 'container',
    note: 'Bound to the digest of the virtual machine (boundTo); whether the digest covers the host decides whether a moved machine keeps the license.',
    options: [{ key: 'vmDigest', kind: 'digest', required: true, help: 'the digest of the virtual machine, 64 hex' }],
    build: (options) => ({ ...base(options, 'Single User License in a Virtual Machine'), boundTo: checkDigest(options.vmDigest, 'vmDigest') }),
  },
  'feature-on-demand': {
    title: 'Feature-on-Demand License',
    description: 'Individual licenses unlock specific product features and modules, sold as add-ons.',
    servedBy: 'container',
    note: 'featureMap holds the bits sold; a use names the bits it needs and is refused with reason feature when one is missing. An add-on is a put-product with more bits.',
    options: [],
    build: (options) => {
      if (options.featureMap === undefined) throw modelInput('model feature-on-demand needs option featureMap');
      return base(options, 'Feature-on-Demand License');
    },
  },
  perpetual: {
    title: 'Perpetual License',
    description: 'The license is issued permanently and never expires.',
    servedBy: 'container',
    note: 'No expiration, activation time or usage period.',
    options: [],
    build: (options) => base(options, 'Perpetual License'),
  },
  'demo-trial': {
    title: 'Demo / Trial License',
    description: 'The user can use the features the licensor chose for a limited time.',
    servedBy: 'container',
    note: 'usagePeriodSeconds = days from the first use (the card sets firstUse); featureMap limits the features.',
    options: [{ key: 'days', kind: 'whole', required: true, help: 'days from the first use' }],
    build: (options) => ({ ...base(options, 'Demo / Trial License'), usagePeriodSeconds: days(options.days, 'days') }),
  },
  'rental-subscription': {
    title: 'Rental, Leasing, Subscription License',
    description: 'The license is valid for a period the licensor sets; the issuing service can extend it automatically.',
    servedBy: 'container',
    note: 'activationTime = start, expiration = start + periodDays; each instalment or renewal is an extend update from the issuing service.',
    options: [
      { key: 'periodDays', kind: 'whole', required: true, help: 'days the period lasts' },
      { key: 'start', kind: 'time', required: true, help: 'when the period starts' },
    ],
    build: (options) => {
      const start = checkTime(options.start, 'start');
      const expiration = start + days(options.periodDays, 'periodDays');
      if (expiration > MAX_MODEL_TIME) throw modelInput(`expected start + periodDays to be at most ${MAX_MODEL_TIME}, got ${expiration}`);
      return { ...base(options, 'Rental, Leasing, Subscription License'), activationTime: start, expiration };
    },
  },
  'pay-per-use': {
    title: 'Pay-per-Use License',
    description: 'Billing by units used, by time or by function, settled before (prepaid) or after (postpaid) consumption.',
    servedBy: 'container',
    note: 'A unit counter: prepaid counts toward unitLimit = units (add-units tops it up); postpaid counts up toward an optional credit and settle-units bills it. The unit (minutes or calls) is named in the protected data; the program counts one unit per started minute or per call.',
    options: [
      { key: 'payment', kind: 'choice', required: true, choices: ['prepaid', 'postpaid'], help: 'prepaid or postpaid' },
      { key: 'unit', kind: 'choice', required: true, choices: ['minutes', 'calls'], help: 'what one unit is' },
      { key: 'units', kind: 'whole', required: false, help: 'prepaid: units bought; postpaid: credit until the next bill' },
    ],
    build: (options) => {
      const payment = checkChoice(options.payment, 'payment', ['prepaid', 'postpaid'] as const);
      const unit = checkChoice(options.unit, 'unit', ['minutes', 'calls'] as const);
      if (payment === 'prepaid' && options.units === undefined) throw modelInput('model pay-per-use needs option units when prepaid');
      return {
        ...base(options, 'Pay-per-Use License'), payment, protectedData: utf8(`${PAY_PER_USE_UNIT_PREFIX}${unit}`),
        ...(options.units === undefined ? {} : { unitLimit: checkWhole(options.units, 'units', 0, MAX_UNITS) }),
      };
    },
  },
  'software-assurance': {
    title: 'License with Software Assurance',
    description: 'A perpetual license with maintenance: releases made during the maintenance period stay usable after it ends; later ones are not.',
    servedBy: 'container',
    note: 'maintenanceUntil; a use reports the release time of the program, and releases after the date are refused with reason maintenance.',
    options: [{ key: 'maintenanceUntil', kind: 'time', required: true, help: 'when maintenance ends' }],
    build: (options) => ({ ...base(options, 'License with Software Assurance'), maintenanceUntil: checkTime(options.maintenanceUntil, 'maintenanceUntil') }),
  },
  'downgrade-right': {
    title: 'License with Downgrade-Right',
    description: 'The license covers older versions of the program too.',
    servedBy: 'container',
    note: 'versions = oldest (default 0) .. version.',
    options: [
      { key: 'version', kind: 'whole', required: true, help: 'the version sold' },
      { key: 'oldest', kind: 'whole', required: false, help: 'the oldest version covered (default 0)' },
    ],
    build: (options) => {
      const version = checkWhole(options.version, 'version', 0, MAX_CODE);
      return { ...base(options, 'License with Downgrade-Right'), versions: { min: checkWhole(options.oldest ?? 0, 'oldest', 0, version), max: version } };
    },
  },
  'upgrade-right': {
    title: 'License with Upgrade-Right',
    description: 'The license covers newer versions of the program too.',
    servedBy: 'container',
    note: `versions = version .. newest (default ${MAX_CODE}).`,
    options: [
      { key: 'version', kind: 'whole', required: true, help: 'the version sold' },
      { key: 'newest', kind: 'whole', required: false, help: 'the newest version covered (default: all)' },
    ],
    build: (options) => {
      const version = checkWhole(options.version, 'version', 0, MAX_CODE);
      return { ...base(options, 'License with Upgrade-Right'), versions: { min: version, max: checkWhole(options.newest ?? MAX_CODE, 'newest', version, MAX_CODE) } };
    },
  },
  'named-user': {
    title: 'Named User License',
    description: 'The license is associated with a user name.',
    servedBy: 'container',
    note: 'namedUser; a use reports the user, and any other is refused with reason user.',
    options: [{ key: 'user', kind: 'text', required: true, help: 'the user name' }],
    build: (options) => ({ ...base(options, 'Named User License'), namedUser: checkText(options.user, 'user', 1) }),
  },
  'computer-bound': {
    title: 'Computer-bound License',
    description: 'The license is associated with a specific computer.',
    servedBy: 'container',
    note: 'boundTo = the computer\'s digest; a use reports its digest, compared in constant time.',
    options: [{ key: 'computerDigest', kind: 'digest', required: true, help: 'the digest of the computer, 64 hex' }],
    build: (options) => ({ ...base(options, 'Computer-bound License'), boundTo: checkDigest(options.computerDigest, 'computerDigest') }),
  },
  'time-zone': {
    title: 'Time Zone License',
    description: 'The license can only be used in the specified geographical region (time zone).',
    servedBy: 'container',
    note: 'timeZones = the UTC offsets allowed, inclusive; a use reports the host\'s offset.',
    options: [
      { key: 'minOffsetMinutes', kind: 'offset', required: true, help: 'westmost UTC offset, minutes or ±HH:MM' },
      { key: 'maxOffsetMinutes', kind: 'offset', required: true, help: 'eastmost UTC offset, minutes or ±HH:MM' },
    ],
    build: (options) => {
      const minOffsetMinutes = checkWhole(options.minOffsetMinutes, 'minOffsetMinutes', -720, 840);
      return { ...base(options, 'Time Zone License'), timeZones: { minOffsetMinutes, maxOffsetMinutes: checkWhole(options.maxOffsetMinutes, 'maxOffsetMinutes', minOffsetMinutes, 840) } };
    },
  },
  'country-based': {
    title: 'Country-Based License',
    description: 'The license can only be used in the countries the licensor whitelisted, or not excluded in a blacklist.',
    servedBy: 'container',
    note: 'countries = { allow } and/or { deny }, ISO 3166-1 alpha-2; a use reports the host\'s country.',
    options: [
      { key: 'allow', kind: 'countries', required: false, help: 'countries allowed, e.g. DE,AT' },
      { key: 'deny', kind: 'countries', required: false, help: 'countries excluded' },
    ],
    build: (options) => {
      if (options.allow === undefined && options.deny === undefined) throw modelInput('model country-based needs option allow or deny');
      const countries = {
        ...(options.allow === undefined ? {} : { allow: checkCountries(options.allow, 'allow') }),
        ...(options.deny === undefined ? {} : { deny: checkCountries(options.deny, 'deny') }),
      };
      return { ...base(options, 'Country-Based License'), countries };
    },
  },
};
