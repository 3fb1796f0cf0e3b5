// The license container on a card (DESIGN.md "License containers and lost licenses"; Wibu 000 §2.2-2.8, 002 Table 1):
// firm items, one per licensor, holding product items. These are the plain values every part of src/license shares:
// the container codec (binary, in the card's protected information), the updates a licensor signs, the decisions of
// license-decision.ts and the issuing back end.
//
// Identity: a firm item is the licensor's Ed25519 public key. The firm code is the licensor's own number for itself
// (unique in one container, shown to people); no one but the holder of the key can create, change or delete the
// firm item, so no one can squat another licensor's firm code with a key of their own: the code is bound to the key
// that created it (a second key naming the same code is refused).

/** Seconds since 1970-01-01T00:00:00Z; whole seconds, as the trail's time texts carry them. */
export type UnixSeconds = number;

/** Firm and product codes are unsigned 32-bit numbers, as CodeMeter's. */
export const MAX_CODE = 0xffff_ffff;
/** Unit counters are whole units below 2^53 (exact in JSON and in a JavaScript number). */
export const MAX_UNITS = Number.MAX_SAFE_INTEGER;
/** Each of user, protected, hidden and secret data of one product item. */
export const MAX_ITEM_DATA_BYTES = 1024;
/** Firm texts and product texts (UTF-8 bytes). */
export const MAX_TEXT_BYTES = 128;
/** Limits that keep a container inside what a card's protected information can carry. */
export const MAX_FIRM_ITEMS = 500;
export const MAX_PRODUCT_ITEMS_PER_FIRM = 64;
/** How far a host clock may lag the container's clock before the container calls it set back (NTP steps, drift). */
export const CLOCK_TOLERANCE_SECONDS = 300;

/** How units are paid for (002 Table 1, pay-per-use): prepaid counts down a limit, postpaid counts up for the bill. */
export type Payment = 'prepaid' | 'postpaid';

/** Where a program may run; both lists are ISO 3166-1 alpha-2 codes, upper case (002 Table 1, country-based). */
export interface CountryRule {
  readonly allow?: readonly string[];
  readonly deny?: readonly string[];
}

/** Offsets from UTC in minutes the host's time zone must lie in, inclusive (002 Table 1, time zone license). */
export interface TimeZoneRule {
  readonly minOffsetMinutes: number;
  readonly maxOffsetMinutes: number;
}

/** Program versions the item covers (002 Table 1, upgrade and downgrade rights), inclusive. */
export interface VersionRule {
  readonly min: number;
  readonly max: number;
}

/** How a network item's seats may be used beyond the license quantity (002 Table 1, overflow). */
export interface OverflowRule {
  /** Seats beyond licenseQuantity, each use logged in the trail. */
  readonly seats: number;
  /** Overflow stops at this time, if given. */
  readonly until?: UnixSeconds;
}

/** A standby license server's item (002 Table 1, hot and cold standby): used only while the primary is down. */
export interface StandbyRule {
  readonly kind: 'hot' | 'cold';
  /** Total seconds of standby use the licensor allows, counted in the trail. */
  readonly maxSeconds: number;
}

/**
 * One product item (CodeMeter's Product Item with its options, "PIO"). Absent fields do not restrict. Data fields:
 * user data is the customer's (not protected: the user may write it); protected data only the licensor writes;
 * hidden data only the licensor writes and reads (the card hands it out only encrypted to the licensor, 000 §2.7);
 * secret data never leaves the card (000 §2.8): programs use it through a keyed challenge.
 */
export interface ProductItem {
  readonly productCode: number;
  readonly text: string;
  /** Feature bits this item unlocks (feature on demand); a use names the bits it needs. */
  readonly featureMap: number;
  /** Prepaid: units that may be used in all; postpaid: the credit allowed before the next bill (absent: unlimited). */
  readonly unitLimit?: number;
  /** Units used since the licensor last set the limit; counted on the card with every use (SIGN AND INCREMENT). */
  readonly unitsUsed: number;
  readonly payment: Payment;
  /** Not valid at or after this time. */
  readonly expiration?: UnixSeconds;
  /** Not valid before this time. */
  readonly activationTime?: UnixSeconds;
  /** Valid for this many seconds from the first use (trial, demo, usage period). */
  readonly usagePeriodSeconds?: number;
  /** When the usage period began (the first use); set by the card. */
  readonly firstUse?: UnixSeconds;
  /** Seats a license server may hand out at once (network / floating); 1 for a single-user item. */
  readonly licenseQuantity: number;
  readonly versions?: VersionRule;
  /** Software assurance: releases made at or before this time may be used, for ever. */
  readonly maintenanceUntil?: UnixSeconds;
  readonly namedUser?: string;
  /** Computer-bound: the digest of the machine (or virtual machine) the item is bound to, 32 bytes. */
  readonly boundTo?: Uint8Array;
  readonly countries?: CountryRule;
  readonly timeZones?: TimeZoneRule;
  readonly overflow?: OverflowRule;
  /** Longest a seat may be borrowed from a license server for offline use, in seconds; absent: not borrowable. */
  readonly maxBorrowSeconds?: number;
  readonly standby?: StandbyRule;
  readonly userData: Uint8Array;
  readonly protectedData: Uint8Array;
  readonly hiddenData: Uint8Array;
  readonly secretData: Uint8Array;
}

export interface FirmItem {
  /** The licensor's Ed25519 public key: the only key whose updates change this item. */
  readonly licensorKey: Uint8Array;
  readonly firmCode: number;
  readonly text: string;
  /** Updates applied so far; an update names the value it expects (000 §2.6 "Firm Update Counter"). */
  readonly updateCounter: number;
  /** The newest time a licensor's update or time certificate vouched for (certified time). */
  readonly certifiedTime?: UnixSeconds;
  /** Sorted by product code, unique. */
  readonly products: readonly ProductItem[];
}

/** How a container was locked (Wibu 000 §2.10): the lock sequence's time and its lockSequenceDigest (32 bytes). */
export interface ContainerLock {
  readonly time: UnixSeconds;
  readonly digest: Uint8Array;
}

/**
 * The whole container. `clock` is the newest time the container has seen (certified times and the host times of
 * uses): time the customer cannot turn back, since a use whose host time lies more than CLOCK_TOLERANCE_SECONDS
 * before it is refused as a clock set back.
 */
export interface LicenseContainer {
  /** Sorted by firm code, unique codes and keys. */
  readonly firms: readonly FirmItem[];
  readonly clock: UnixSeconds;
  /**
   * The central locking authority's Ed25519 public key (000 §2.10: the hub), set by the first licensor update that
   * names one (set-lock-authority); only sequences under this key lock or unlock the container.
   */
  readonly lockAuthority?: Uint8Array;
  /** Present exactly while the container is locked: it then serves no license and signs nothing but its unlock. */
  readonly lock?: ContainerLock;
  /**
   * The time of the newest unlock sequence applied: a lock sequence must be newer, so an old sequence that a licensor
   * still holds (a central list downloaded before the unlock) cannot lock the card again.
   */
  readonly unlockedAt?: UnixSeconds;
}

export const EMPTY_CONTAINER: LicenseContainer = Object.freeze({ firms: Object.freeze([]) as readonly FirmItem[], clock: 0 });

/**
 * What a program asks of the container at one use, as its host reports it. The host's time, country, time zone, user
 * and computer come from the machine the program runs on: a local administrator can fake all but the time, which the
 * container's clock bounds (README "License containers").
 */
export interface UseRequest {
  readonly licensorKey: Uint8Array;
  readonly productCode: number;
  /** Feature bits the program needs; every one must be in the item's feature map (0: none beyond the item). */
  readonly features: number;
  /** Units to count (0: a check that counts nothing). */
  readonly units: number;
  readonly hostTime: UnixSeconds;
  /** ISO 3166-1 alpha-2 code of the host's country, upper case. */
  readonly country?: string;
  /** The host's offset from UTC in minutes. */
  readonly timeZoneOffsetMinutes?: number;
  readonly user?: string;
  /** The digest of this computer (or virtual machine), 32 bytes. */
  readonly computer?: Uint8Array;
  /** The program's version and release time (upgrade, downgrade, software assurance). */
  readonly version?: number;
  readonly releaseTime?: UnixSeconds;
}
