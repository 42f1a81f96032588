//! Runs golden conformance files (PyTorch's results, format in `tests/golden/README.md`)
//! through the crate's public API, in f32 and f64, forward and backward.
//!
//! ```text
//! cargo run --release --example conformance -- tests/golden/*.safetensors
//! ```
//!
//! Prints one line per file, `PASS|FAIL|SKIP case max_err_f32 max_err_f64`, where max_err is
//! the largest `max|ours - golden| / max(max|golden|, 1e-6)` over every output and gradient
//! tensor; PASS needs f32 <= 1e-5 and f64 <= 1e-10. SKIP names what the crate does not do yet.
//! A file that cannot be read or is malformed gives `ERROR path - - (reason)`. Exits with 1
//! on any FAIL or ERROR, with 2 (after a usage message) when no file is given.

#[path = "../tests/golden_case/mod.rs"]
mod golden_case;

use std::path::Path;
use std::process::ExitCode;

use golden_case::{GoldenCase, error_line};

fn main() -> ExitCode {
    let files: Vec<String> = std::env::args().skip(1).collect();
    if files.is_empty() || files.iter().any(|f| f == "-h" || f == "--help") {
        eprintln!(
            "usage: conformance FILE.safetensors...\n\
             \n\
             Runs each golden file through the crate in f32 and f64 and prints\n\
             `PASS|FAIL|SKIP case max_err_f32 max_err_f64` per file.\n\
             Thresholds: f32 <= {:e}, f64 <= {:e}. Exit status 1 on any FAIL or ERROR.",
            golden_case::TOL_F32,
            golden_case::TOL_F64
        );
        return ExitCode::from(2);
    }
    eprintln!("instruction set: {}", rnn_kernels::Isa::detect().name());

    let mut bad = 0usize;
    for file in &files {
        match GoldenCase::load(Path::new(file)) {
            Ok(case) => {
                let outcome = case.run(None);
                if outcome.failed() {
                    bad += 1;
                }
                println!("{}", outcome.line(&case.case));
            }
            Err(reason) => {
                bad += 1;
                println!("{}", error_line(file, &reason));
            }
        }
    }
    if bad == 0 {
        ExitCode::SUCCESS
    } else {
        eprintln!("{bad} of {} files failed", files.len());
        ExitCode::FAILURE
    }
}
