//! A tiny reader turning fuzzer bytes into choices, so the checkers need no `arbitrary`.
//!
//! Every read succeeds: past the end of the data it yields zeros, so any byte string (the
//! empty one included) is a valid input and short inputs mean small, simple problems.

/// A cursor over the fuzzer's bytes.
pub struct Bytes<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Bytes<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Bytes { data, pos: 0 }
    }

    /// The next byte, or 0 past the end.
    pub fn u8(&mut self) -> u8 {
        let v = self.data.get(self.pos).copied().unwrap_or(0);
        self.pos += 1;
        v
    }

    pub fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }

    pub fn u32(&mut self) -> u32 {
        u32::from_le_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
    }

    pub fn u64(&mut self) -> u64 {
        u64::from(self.u32()) | (u64::from(self.u32()) << 32)
    }

    pub fn bool(&mut self) -> bool {
        self.u8() & 1 == 1
    }

    /// A value in `lo..=hi` (`lo <= hi`).
    pub fn range(&mut self, lo: usize, hi: usize) -> usize {
        debug_assert!(lo <= hi);
        let span = (hi - lo) as u64 + 1;
        lo + (u64::from(self.u16()) % span) as usize
    }

    /// One of `items`.
    pub fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.u8() as usize % items.len()]
    }

    /// A finite `f32` in `[-1, 1]`, often a value a fuzzer likes: 0, -0, +-1, a subnormal, a
    /// power of two, or a dense uniform value.
    pub fn unit_f32(&mut self) -> f32 {
        match self.u8() % 8 {
            0 => 0.0,
            1 => -0.0,
            2 => {
                // A subnormal of either sign.
                let bits = self.u32() & 0x807f_ffff;
                f32::from_bits(bits | u32::from(bits & 0x007f_ffff == 0))
            }
            3 => {
                if self.bool() {
                    1.0
                } else {
                    -1.0
                }
            }
            4 => {
                // +-2^-k, k in 0..=40.
                let k = i32::from(self.u8() % 41);
                let v = 2f32.powi(-k);
                if self.bool() { v } else { -v }
            }
            _ => (f32::from(self.u16()) / 32767.5 - 1.0).clamp(-1.0, 1.0),
        }
    }

    /// Any `f32`: arbitrary bits, or a special (NaN, +-inf, +-MAX, +-MIN_POSITIVE, the
    /// smallest subnormal, a huge power of two), or a unit value.
    pub fn hostile_f32(&mut self) -> f32 {
        match self.u8() % 12 {
            0 => f32::NAN,
            1 => f32::INFINITY,
            2 => f32::NEG_INFINITY,
            3 => {
                if self.bool() {
                    f32::MAX
                } else {
                    f32::MIN
                }
            }
            4 => {
                if self.bool() {
                    f32::MIN_POSITIVE
                } else {
                    f32::from_bits(1)
                }
            }
            5 => {
                // +-2^k for k in 20..=127: huge but finite.
                let v = 2f32.powi(20 + i32::from(self.u8() % 108));
                if self.bool() { v } else { -v }
            }
            6 => -f32::from_bits(self.u32() | 0x7f80_0000), // NaN with a payload, or -inf
            7..=9 => f32::from_bits(self.u32()),
            _ => self.unit_f32(),
        }
    }
}

/// A deterministic xorshift stream of pseudo-random bytes for `cargo test` runs of the
/// checkers (no `rand` needed, and the same bytes on every machine).
pub fn pseudo_random_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut s = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 24) as u8
        })
        .collect()
}
