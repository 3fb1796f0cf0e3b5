// Product templates (Wibu 002 Table 1 as the issuing back end sells it): the ProductSpec JSON of put-product with relative
// times (durationSeconds: rental / subscription; activationDelaySeconds) and the issuing rules (maxActivations: volume;
// maxDeactivations per cyclePeriodSeconds: activation cycling); renewals extend or add an instalment of units.
import { describe, expect, it } from 'vitest';
import {
  activationSpec, buildModelSpec, encodeProductTemplate, IssuingRefusal, isRenewable, parseProductSpec, parseProductTemplate, productSpecJson, renewalOperations,
} from '../../../src/license/index.js';

const product = { code: 42, text: 'Editor' };
const NOW = 1_800_000_000;

describe('parseProductTemplate', () => {
  it('fills the product\'s code and text and the defaults, and reads the rules', () => {
    const template = parseProductTemplate({ durationSeconds: 3600, maxActivations: 5, maxDeactivations: 1, cyclePeriodSeconds: 60 }, product);
    expect(template.spec).toMatchObject({ productCode: 42, text: 'Editor', featureMap: 0, payment: 'prepaid', licenseQuantity: 1 });
    expect(template).toMatchObject({ durationSeconds: 3600, maxActivations: 5, maxDeactivations: 1, cyclePeriodSeconds: 60 });
    expect(parseProductTemplate({}, product).maxActivations).toBe(1);
  });

  it('round-trips through its stored JSON, and its spec through the put-product JSON of license-update.ts', () => {
    const template = parseProductTemplate({ unitLimit: 500, payment: 'postpaid', countries: { allow: ['DE'] }, activationDelaySeconds: 10, protectedData: 'abcd' }, product);
    expect(parseProductTemplate(encodeProductTemplate(template), product)).toEqual(template);
    expect(parseProductSpec(productSpecJson(template.spec))).toEqual(template.spec);
  });

  it('takes a model of the catalogue (002 Table 1) as its spec', () => {
    const spec = buildModelSpec('pay-per-use', { productCode: '42', text: 'Editor', units: '100', payment: 'prepaid', unit: 'calls' });
    expect(spec.unitLimit).toBe(100);
    expect(parseProductTemplate(productSpecJson(spec), product).spec).toEqual(spec);
  });

  it.each<[string, Record<string, unknown>]>([
    ['an unknown field', { colour: 'red' }],
    ['another product code', { productCode: 43 }],
    ['another text', { text: 'Viewer' }],
    ['expiration and durationSeconds', { expiration: 5, durationSeconds: 5 }],
    ['activationTime and activationDelaySeconds', { activationTime: 5, activationDelaySeconds: 5 }],
    ['maxDeactivations without a period', { maxDeactivations: 2 }],
    ['a period without maxDeactivations', { cyclePeriodSeconds: 2 }],
    ['zero activations', { maxActivations: 0 }],
    ['a fractional duration', { durationSeconds: 1.5 }],
    ['a duration as a string', { durationSeconds: '60' }],
    ['a bad payment', { payment: 'later' }],
  ])('refuses %s with 400 input', (_name, fields) => {
    let thrown: unknown;
    try {
      parseProductTemplate(fields, product);
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(IssuingRefusal);
    expect(thrown).toMatchObject({ status: 400, reason: 'input', message: expect.stringMatching(/^product template: /) });
  });
});

describe('activationSpec and renewals', () => {
  it('makes relative times absolute at the time of activation', () => {
    expect(activationSpec(parseProductTemplate({ durationSeconds: 100 }, product), NOW)).toMatchObject({ expiration: NOW + 100 });
    const delayed = activationSpec(parseProductTemplate({ durationSeconds: 100, activationDelaySeconds: 50 }, product), NOW);
    expect(delayed).toMatchObject({ activationTime: NOW + 50, expiration: NOW + 150 });
    expect(activationSpec(parseProductTemplate({ expiration: 77 }, product), NOW).expiration).toBe(77);
  });

  it.each<[string, Record<string, unknown>, number | undefined, unknown[]]>([
    ['a subscription still running: from its expiration', { durationSeconds: 100 }, NOW + 40, [{ op: 'extend', productCode: 42, expiration: NOW + 140 }]],
    ['a subscription run out: from now', { durationSeconds: 100 }, NOW - 40, [{ op: 'extend', productCode: 42, expiration: NOW + 100 }]],
    ['an instalment of units', { unitLimit: 250 }, undefined, [{ op: 'add-units', productCode: 42, units: 250 }]],
    ['both', { unitLimit: 5, durationSeconds: 10 }, NOW, [{ op: 'extend', productCode: 42, expiration: NOW + 10 }, { op: 'add-units', productCode: 42, units: 5 }]],
  ])('renews %s', (_name, fields, current, operations) => {
    const template = parseProductTemplate(fields, product);
    expect(isRenewable(template)).toBe(true);
    expect(renewalOperations(template, current, NOW).operations).toEqual(operations);
  });

  it('has nothing to renew without a duration or a unit limit', () => {
    expect(isRenewable(parseProductTemplate({}, product))).toBe(false);
    expect(isRenewable(parseProductTemplate({ unitLimit: 0 }, product))).toBe(false);
  });
});
