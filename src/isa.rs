//! Instruction-set detection and the switch that caps it.
//!
//! The crate picks one [`Isa`] per call of a public function (or once per prepared plan) and
//! never per element or per step. Detection runs once per process and is cached.
//!
//! The environment variable `RNN_KERNELS_MAX_ISA` (`portable`, `avx2`, `avx512`, `neon`) caps
//! what [`Isa::detect`] returns, so CI and users can force a slower path on a fast machine.
//! Tests do not need it: they enumerate [`Isa::available`] and run every path explicitly.

use std::sync::OnceLock;

/// An instruction-set path of the crate's kernels.
///
/// The order is "better than": a path's kernels need every feature of the paths below it on
/// the same architecture.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Isa {
    /// Plain Rust (with the `wide` crate where it helps); runs everywhere.
    Portable,
    /// aarch64 Advanced SIMD (128-bit).
    Neon,
    /// x86_64 AVX2 with FMA (256-bit).
    Avx2Fma,
    /// x86_64 AVX-512F (512-bit), also requiring AVX2 and FMA.
    Avx512,
}

impl Isa {
    /// Every path, best first.
    pub const ALL: [Isa; 4] = [Isa::Avx512, Isa::Avx2Fma, Isa::Neon, Isa::Portable];

    /// The lower-case name used by `RNN_KERNELS_MAX_ISA` and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Isa::Portable => "portable",
            Isa::Neon => "neon",
            Isa::Avx2Fma => "avx2",
            Isa::Avx512 => "avx512",
        }
    }

    /// Parses a name as printed by [`Isa::name`].
    pub fn from_name(name: &str) -> Option<Isa> {
        Isa::ALL
            .into_iter()
            .find(|isa| isa.name() == name.trim().to_ascii_lowercase())
    }

    /// Whether this CPU can run the path (ignores the environment cap).
    pub fn is_supported(self) -> bool {
        match self {
            Isa::Portable => true,
            #[cfg(target_arch = "aarch64")]
            Isa::Neon => std::arch::is_aarch64_feature_detected!("neon"),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2Fma => {
                std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("fma")
            }
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => {
                std::arch::is_x86_feature_detected!("avx512f")
                    && std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("fma")
            }
            #[allow(unreachable_patterns)]
            _ => false,
        }
    }

    /// Every path this CPU can run, best first (ignores the environment cap, so tests can run
    /// all of them).
    pub fn available() -> Vec<Isa> {
        Isa::ALL
            .into_iter()
            .filter(|isa| isa.is_supported())
            .collect()
    }

    /// The best supported path, capped by `RNN_KERNELS_MAX_ISA` if set. Cached after the first
    /// call. An unknown value of the variable is ignored (with no cap), never a panic.
    pub fn detect() -> Isa {
        static DETECTED: OnceLock<Isa> = OnceLock::new();
        *DETECTED.get_or_init(|| {
            let cap = std::env::var("RNN_KERNELS_MAX_ISA")
                .ok()
                .and_then(|v| Isa::from_name(&v));
            Isa::available()
                .into_iter()
                .find(|isa| cap.is_none_or(|cap| *isa <= cap))
                .unwrap_or(Isa::Portable)
        })
    }
}

/// Whether the CPU calls itself `GenuineIntel` (CPUID leaf 0; cached after the first call).
/// Some tunings differ by vendor (the packed GEMM's K blocking, see `kernels::Tuning`; the
/// time loops' tall tiles and rows' split): measured differences between the hosts, not
/// features, so nothing but such tunings may depend on it.
pub(crate) fn vendor_is_intel() -> bool {
    static INTEL: OnceLock<bool> = OnceLock::new();
    *INTEL.get_or_init(|| {
        #[cfg(all(target_arch = "x86_64", not(miri)))]
        {
            // SAFETY: CPUID exists on every x86_64 CPU (a safe function in newer Rust, hence
            // the allowance; `unsafe` for the crate's minimum Rust).
            #[allow(unused_unsafe)]
            let r = unsafe { std::arch::x86_64::__cpuid(0) };
            let mut v = [0u8; 12];
            v[..4].copy_from_slice(&r.ebx.to_le_bytes());
            v[4..8].copy_from_slice(&r.edx.to_le_bytes());
            v[8..].copy_from_slice(&r.ecx.to_le_bytes());
            &v == b"GenuineIntel"
        }
        #[cfg(not(all(target_arch = "x86_64", not(miri))))]
        false
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn portable_is_always_available() {
        assert!(Isa::available().contains(&Isa::Portable));
        assert!(Isa::detect().is_supported());
    }

    #[test]
    fn names_round_trip() {
        for isa in Isa::ALL {
            assert_eq!(Isa::from_name(isa.name()), Some(isa));
        }
        assert_eq!(Isa::from_name("AVX512 "), Some(Isa::Avx512));
        assert_eq!(Isa::from_name("sse9"), None);
    }
}
