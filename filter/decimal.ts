// Correctly rounded conversion of JSON number text to binary64, the value JavaScript's JSON.parse gives.
// AssemblyScript's parseFloat (0.28.20) is not exact: "1.7911781170349283e+45" comes out as 1.79e+38
// (about 1.5% of random doubles printed by JSON.stringify are wrong), and about one 25-digit number in
// a thousand is one ulp off. A schema bound compared with a misread number gives the wrong verdict.
//
// Method: numbers with at most 15 significant digits and a small exponent are exact in one f64 operation
// (Clinger's fast path: both operands exact, one rounding). Others start from an f64 estimate a few ulps
// off and are corrected in exact big-integer arithmetic: the decimal value is compared with the midpoint
// between the estimate and its neighbours, moving one ulp at a time (the idea of Clinger's AlgorithmR).
// Only multiplication by small numbers, shifts and comparison are needed, on at most a few thousand bits.

/** A midpoint between two doubles has at most 767 significant decimal digits; digits past these only tell "a bit more". */
const MAX_SIGNIFICANT_DIGITS: i32 = 800;
/**
 * 5120 bits. The largest number here is below 2800 bits: (2m+1) * 5^1124 for the smallest exponent that is not
 * rounded to 0 outright, or 800 digits; the other side of a comparison is shifted to about the same size.
 */
const LIMB_CAPACITY: i32 = 160;
/** The estimate is within a few ulps; the cap only guarantees termination. */
const MAX_CORRECTION_STEPS: i32 = 64;
const MAX_FINITE_BITS: u64 = 0x7fefffffffffffff;

const EXACT_POWERS_OF_TEN: StaticArray<f64> = [
  1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

/** Non-negative integer, little-endian 32-bit limbs; `overflow` is set instead of writing past the capacity. */
class BigNat {
  limbs: StaticArray<u32> = new StaticArray<u32>(LIMB_CAPACITY);
  length: i32 = 0;
  overflow: bool = false;

  setU64(x: u64): void {
    this.overflow = false;
    unchecked((this.limbs[0] = <u32>x));
    unchecked((this.limbs[1] = <u32>(x >> 32)));
    this.length = x == 0 ? 0 : x >> 32 == 0 ? 1 : 2;
  }

  copyFrom(other: BigNat): void {
    for (let i = 0; i < other.length; i++) unchecked((this.limbs[i] = other.limbs[i]));
    this.length = other.length;
    this.overflow = other.overflow;
  }

  /** this = this * factor + addend */
  mulAddSmall(factor: u32, addend: u32): void {
    let carry: u64 = addend;
    for (let i = 0; i < this.length; i++) {
      const p = <u64>unchecked(this.limbs[i]) * <u64>factor + carry;
      unchecked((this.limbs[i] = <u32>p));
      carry = p >> 32;
    }
    if (carry != 0) {
      if (this.length >= LIMB_CAPACITY) {
        this.overflow = true;
        return;
      }
      unchecked((this.limbs[this.length] = <u32>carry));
      this.length++;
    }
  }

  mulPow5(exponent: i32): void {
    let e = exponent;
    while (e >= 13) {
      this.mulAddSmall(1220703125, 0);
      e -= 13;
    } // 5^13 is the largest power of 5 in a u32
    let rest: u32 = 1;
    while (e > 0) {
      rest *= 5;
      e--;
    }
    if (rest != 1) this.mulAddSmall(rest, 0);
  }

  shiftLeft(bits: i32): void {
    if (bits <= 0 || this.length == 0) return;
    const limbShift = bits >> 5;
    const bitShift = bits & 31;
    if (this.length + limbShift + 1 > LIMB_CAPACITY) {
      this.overflow = true;
      return;
    }
    let top: u32 = 0;
    if (bitShift != 0) top = unchecked(this.limbs[this.length - 1]) >> (32 - bitShift);
    for (let i = this.length - 1; i >= 0; i--) {
      let v = unchecked(this.limbs[i]) << bitShift;
      if (bitShift != 0 && i > 0) v |= unchecked(this.limbs[i - 1]) >> (32 - bitShift);
      unchecked((this.limbs[i + limbShift] = v));
    }
    for (let i = 0; i < limbShift; i++) unchecked((this.limbs[i] = 0));
    this.length += limbShift;
    if (top != 0) {
      unchecked((this.limbs[this.length] = top));
      this.length++;
    }
  }

  /** this = a * factor; `a` must be another BigNat. */
  setProduct(a: BigNat, factor: u64): void {
    this.copyFrom(a);
    this.mulAddSmall(<u32>factor, 0);
    const high = <u32>(factor >> 32);
    if (high != 0 && !this.overflow) {
      // this += (a * high) << 32; the sum is below a * 2^64, so a.length + 2 limbs hold it.
      const width = a.length + 2;
      if (width > LIMB_CAPACITY) {
        this.overflow = true;
        return;
      }
      for (let i = this.length; i < width; i++) unchecked((this.limbs[i] = 0));
      this.length = width;
      let carry: u64 = 0;
      for (let i = 0; i < a.length; i++) {
        const p = <u64>unchecked(a.limbs[i]) * <u64>high + <u64>unchecked(this.limbs[i + 1]) + carry;
        unchecked((this.limbs[i + 1] = <u32>p));
        carry = p >> 32;
      }
      for (let j = a.length + 1; carry != 0 && j < width; j++) {
        const sum = <u64>unchecked(this.limbs[j]) + carry;
        unchecked((this.limbs[j] = <u32>sum));
        carry = sum >> 32;
      }
    }
    while (this.length > 0 && unchecked(this.limbs[this.length - 1]) == 0) this.length--;
  }

  /** -1, 0, 1; limbs are kept without leading zeros, so longer means larger. */
  compare(other: BigNat): i32 {
    if (this.length != other.length) return this.length < other.length ? -1 : 1;
    for (let i = this.length - 1; i >= 0; i--) {
      const a = unchecked(this.limbs[i]);
      const b = unchecked(other.limbs[i]);
      if (a != b) return a < b ? -1 : 1;
    }
    return 0;
  }
}

// Scratch integers, reused: a filter instance is single-threaded and this module never re-enters itself.
const digitsScaled = new BigNat(); // significant digits, times 5^E when E >= 0
const midpointScaled = new BigNat(); // 2m+1, times 5^-E when E < 0
const digitsShifted = new BigNat();
// 5^n for the last n asked: the correction compares against it two to four times per number, and numbers
// in one body tend to share exponents.
const powerOfFive = new BigNat();
let powerOfFiveExponent: i32 = -1;

function fivePow(n: i32): BigNat {
  if (n != powerOfFiveExponent) {
    powerOfFive.setU64(1);
    powerOfFive.mulPow5(n);
    powerOfFiveExponent = powerOfFive.overflow ? -1 : n;
  }
  return powerOfFive;
}

/** The decimal value is significand * 10^exponent10 (plus a little more when `truncated`). */
class Decimal {
  exponent10: i32 = 0;
  truncated: bool = false;
}

/**
 * Parses text already checked against the JSON number grammar: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?.
 * `base`/`length` point at its bytes.
 */
export function parseJsonNumber(base: usize, length: i32): f64 {
  let pos = 0;
  const negative = length > 0 && load<u8>(base) == 0x2d;
  if (negative) pos = 1;
  let mantissaEnd = pos;
  while (mantissaEnd < length) {
    const c = load<u8>(base + <usize>mantissaEnd);
    if (c == 0x65 || c == 0x45) break;
    mantissaEnd++;
  }
  const exponent = readExponent(base, mantissaEnd + 1, length);

  // Significant digits: the first and the last non-zero digit, and where the decimal point is.
  let pointAt = mantissaEnd;
  let firstSignificant = -1;
  let lastSignificant = -1;
  for (let i = pos; i < mantissaEnd; i++) {
    const c = load<u8>(base + <usize>i);
    if (c == 0x2e) {
      pointAt = i;
      continue;
    }
    if (c != 0x30) {
      if (firstSignificant < 0) firstSignificant = i;
      lastSignificant = i;
    }
  }
  if (firstSignificant < 0) return negative ? -0.0 : 0.0;
  let digitCount = lastSignificant - firstSignificant + 1;
  if (firstSignificant < pointAt && lastSignificant > pointAt) digitCount--;
  // Power of ten of the last significant digit.
  const lastDigitPower = lastSignificant < pointAt ? pointAt - lastSignificant - 1 : pointAt - lastSignificant;
  const exponent10 = exponent + lastDigitPower;
  const leadingPower = exponent10 + digitCount - 1;
  let magnitude: f64;
  if (leadingPower > 309)
    magnitude = Infinity; // >= 1e310
  else if (leadingPower < -325)
    magnitude = 0; // < 1e-324, below half the smallest subnormal
  else magnitude = convert(base, firstSignificant, lastSignificant, digitCount, exponent10);
  return negative ? -magnitude : magnitude;
}

/** Exponent digits after 'e' with their sign; clamped far beyond where the result saturates, so it cannot overflow. */
function readExponent(base: usize, from: i32, length: i32): i32 {
  if (from >= length) return 0;
  let i = from;
  let sign = 1;
  const c = load<u8>(base + <usize>i);
  if (c == 0x2d) {
    sign = -1;
    i++;
  } else if (c == 0x2b) i++;
  let value = 0;
  for (; i < length; i++) {
    const d = <i32>load<u8>(base + <usize>i) - 0x30;
    if (value < 100000000) value = value * 10 + d;
  }
  return sign * value;
}

function convert(base: usize, first: i32, last: i32, digitCount: i32, exponent10: i32): f64 {
  // The first up to 19 significant digits, exactly.
  let head: u64 = 0;
  let headDigits = 0;
  for (let i = first; i <= last && headDigits < 19; i++) {
    const c = load<u8>(base + <usize>i);
    if (c == 0x2e) continue;
    head = head * 10 + <u64>(c - 0x30);
    headDigits++;
  }
  if (digitCount <= 15) {
    const exact = <f64>head;
    if (exponent10 >= 0 && exponent10 <= 22) return exact * unchecked(EXACT_POWERS_OF_TEN[exponent10]);
    if (exponent10 < 0 && exponent10 >= -22) return exact / unchecked(EXACT_POWERS_OF_TEN[-exponent10]);
    if (exponent10 > 22 && exponent10 <= 22 + 15 - digitCount) {
      // head * 10^(exponent10-22) is still an integer below 10^15, so exact.
      return exact * unchecked(EXACT_POWERS_OF_TEN[exponent10 - 22]) * 1e22;
    }
  }
  const decimal = new Decimal();
  loadDigits(base, first, last, digitCount, exponent10, decimal);
  return correct(estimate(head, exponent10 + (digitCount - headDigits)), decimal);
}

function estimate(head: u64, power: i32): f64 {
  const h = <f64>head;
  // Split the scaling so no intermediate is subnormal or infinite when the result is not.
  if (power < -300) return h * Math.pow(10, <f64>(power + 300)) * 1e-300;
  if (power > 300) return h * Math.pow(10, <f64>(power - 300)) * 1e300;
  return h * Math.pow(10, <f64>power);
}

/** digitsScaled = significant digits (at most MAX_SIGNIFICANT_DIGITS) times 5^E when E >= 0. */
function loadDigits(base: usize, first: i32, last: i32, digitCount: i32, exponent10: i32, out: Decimal): void {
  const kept = digitCount < MAX_SIGNIFICANT_DIGITS ? digitCount : MAX_SIGNIFICANT_DIGITS;
  out.truncated = kept < digitCount; // the dropped part ends in a non-zero digit, so it is > 0
  out.exponent10 = exponent10 + (digitCount - kept);
  digitsScaled.setU64(0);
  let chunk: u32 = 0;
  let chunkScale: u32 = 1;
  let taken = 0;
  for (let i = first; i <= last && taken < kept; i++) {
    const c = load<u8>(base + <usize>i);
    if (c == 0x2e) continue;
    chunk = chunk * 10 + <u32>(c - 0x30);
    chunkScale *= 10;
    taken++;
    if (chunkScale == 1000000000) {
      digitsScaled.mulAddSmall(chunkScale, chunk);
      chunk = 0;
      chunkScale = 1;
    }
  }
  if (chunkScale != 1) digitsScaled.mulAddSmall(chunkScale, chunk);
  if (out.exponent10 > 0) digitsScaled.mulPow5(out.exponent10);
}

/** Sign of (decimal value - midpoint between z and the next double up), z finite and >= 0. */
function compareWithMidpointAbove(z: f64, decimal: Decimal): i32 {
  const bits = reinterpret<u64>(z);
  const biasedExponent = <i32>(bits >> 52);
  const fraction = bits & 0xfffffffffffff;
  const m: u64 = biasedExponent == 0 ? fraction : fraction | ((<u64>1) << 52);
  const k = biasedExponent == 0 ? -1074 : biasedExponent - 1075;
  // decimal = digits * 5^E * 2^E, midpoint = (2m+1) * 2^(k-1); compare at the smaller power of two.
  if (decimal.exponent10 < 0) midpointScaled.setProduct(fivePow(-decimal.exponent10), 2 * m + 1);
  else midpointScaled.setU64(2 * m + 1);
  digitsShifted.copyFrom(digitsScaled);
  const shift = decimal.exponent10 - (k - 1);
  if (shift > 0) digitsShifted.shiftLeft(shift);
  else midpointScaled.shiftLeft(-shift);
  if (digitsShifted.overflow || midpointScaled.overflow) return 2; // cannot happen within the bounds above
  const c = digitsShifted.compare(midpointScaled);
  return c == 0 && decimal.truncated ? 1 : c;
}

function isOddMantissa(z: f64): bool {
  return (reinterpret<u64>(z) & 1) != 0;
}

function correct(estimated: f64, decimal: Decimal): f64 {
  let z = estimated;
  if (!(z >= 0)) z = 0;
  if (reinterpret<u64>(z) > MAX_FINITE_BITS) z = reinterpret<f64>(MAX_FINITE_BITS);
  for (let step = 0; step < MAX_CORRECTION_STEPS; step++) {
    const above = compareWithMidpointAbove(z, decimal);
    if (above == 2) return z;
    if (above > 0 || (above == 0 && isOddMantissa(z))) {
      // Past the midpoint above the largest double: rounds to infinity, as in IEEE 754.
      if (reinterpret<u64>(z) == MAX_FINITE_BITS) return Infinity;
      z = reinterpret<f64>(reinterpret<u64>(z) + 1);
      continue;
    }
    if (z == 0) return z;
    const below = reinterpret<f64>(reinterpret<u64>(z) - 1);
    const atLower = compareWithMidpointAbove(below, decimal);
    if (atLower == 2) return z;
    if (atLower < 0 || (atLower == 0 && !isOddMantissa(below))) {
      z = below;
      continue;
    }
    return z;
  }
  return z;
}
