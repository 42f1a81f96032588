//! The crate against PyTorch's golden results in `tests/golden/` (see its README), on every
//! instruction-set path this CPU supports, plus the loader's handling of malformed files.

mod golden_case;

use std::collections::BTreeSet;
use std::path::PathBuf;

use golden_case::{GoldenCase, Outcome, TOL_F32, TOL_F64, error_line, normalized_error};
use rnn_kernels::Isa;
use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensors};

/// The cases the crate must run and pass (single layer, one direction, tanh or relu).
const SUPPORTED: [&str; 5] = [
    "rnn_tanh_i3_h5_b2_t4",
    "rnn_tanh_i16_h32_b3_t10",
    "rnn_relu_i8_h16_b2_t6",
    "rnn_tanh_nobias",
    "rnn_tanh_varlen",
];

/// The cases it must skip, each with the features its reason must name.
const SKIPPED: [(&str, &[&str]); 12] = [
    ("rnn_tanh_2layer", &["num_layers = 2"]),
    ("rnn_tanh_bidir", &["bidirectional"]),
    ("lstm_i3_h5_b2_t4", &["LSTM"]),
    ("lstm_i16_h32_b3_t10", &["LSTM"]),
    ("lstm_nobias", &["LSTM"]),
    (
        "lstm_2layer_bidir",
        &["LSTM", "num_layers = 2", "bidirectional"],
    ),
    ("lstm_varlen_bidir", &["LSTM", "bidirectional"]),
    ("gru_i3_h5_b2_t4", &["GRU"]),
    ("gru_i16_h32_b3_t10", &["GRU"]),
    ("gru_nobias", &["GRU"]),
    (
        "gru_2layer_bidir",
        &["GRU", "num_layers = 2", "bidirectional"],
    ),
    ("gru_varlen_bidir_unsorted", &["GRU", "bidirectional"]),
];

fn golden_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

fn path_of(case: &str) -> PathBuf {
    golden_dir().join(format!("{case}.safetensors"))
}

fn load(case: &str) -> GoldenCase {
    let path = path_of(case);
    GoldenCase::load(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn bytes_of(case: &str) -> Vec<u8> {
    let path = path_of(case);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every `*.safetensors` file in `tests/golden/`, by case name (the file stem).
fn all_files() -> BTreeSet<String> {
    std::fs::read_dir(golden_dir())
        .expect("tests/golden exists")
        .map(|entry| entry.expect("readable directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "safetensors"))
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .collect()
}

#[test]
fn supported_cases_match_pytorch_on_every_isa() {
    let isas = Isa::available();
    assert!(isas.contains(&Isa::Portable));
    let mut failures = Vec::new();
    for case in SUPPORTED {
        let golden = load(case);
        assert_eq!(golden.case, case, "metadata `case` of {case}");
        for &isa in &isas {
            let outcome = golden.run(Some(isa));
            let line = format!("[{}] {}", isa.name(), outcome.line(case));
            println!("{line}");
            if !outcome.passed() {
                failures.push(line);
            }
        }
    }
    assert!(
        failures.is_empty(),
        "out of tolerance (f32 <= {TOL_F32:e}, f64 <= {TOL_F64:e}):\n{}",
        failures.join("\n")
    );
}

#[test]
fn exactly_the_unsupported_cases_are_skipped() {
    let files = all_files();
    let expected: BTreeSet<String> = SUPPORTED
        .iter()
        .copied()
        .chain(SKIPPED.iter().map(|(c, _)| *c))
        .map(String::from)
        .collect();
    assert_eq!(files, expected, "the golden files in tests/golden");

    let mut skipped = BTreeSet::new();
    for case in &files {
        let golden = load(case);
        assert_eq!(&golden.case, case, "metadata `case` of {case}");
        if let Outcome::Skip(reason) = golden.run(None) {
            let (_, features) = SKIPPED
                .iter()
                .find(|(c, _)| c == case)
                .unwrap_or_else(|| panic!("{case} was skipped ({reason}) but must run"));
            for feature in *features {
                assert!(
                    reason.contains(feature),
                    "{case}: reason {reason:?} does not name {feature:?}"
                );
            }
            skipped.insert(case.clone());
        }
    }
    let expected_skips: BTreeSet<String> = SKIPPED.iter().map(|(c, _)| c.to_string()).collect();
    assert_eq!(skipped, expected_skips);
}

#[test]
fn the_metric_counts_nan_and_uses_the_floor() {
    assert_eq!(normalized_error(&[1.0f64, 2.5], &[1.0, 2.0]), 0.25);
    assert_eq!(normalized_error(&[1e-7f64], &[0.0]), 1e-7 / 1e-6);
    assert_eq!(normalized_error(&[f64::NAN], &[1.0]), f64::INFINITY);
    assert_eq!(normalized_error(&[1.0f32], &[1.0, 1.0]), f64::INFINITY);
    assert_eq!(normalized_error(&[0.5f32], &[0.5]), 0.0);
}

/// Loads `bytes`, requiring an error (not a panic, not success) whose text contains `needle`.
fn assert_rejected(what: &str, bytes: &[u8], needle: &str) {
    let result = std::panic::catch_unwind(|| GoldenCase::from_bytes(bytes));
    match result {
        Err(_) => panic!("{what}: the loader panicked"),
        Ok(Ok(_)) => panic!("{what}: a malformed file was accepted"),
        Ok(Err(e)) => assert!(e.contains(needle), "{what}: error {e:?} lacks {needle:?}"),
    }
}

#[test]
fn truncated_or_corrupt_bytes_are_errors() {
    let bytes = bytes_of("rnn_tanh_varlen");
    assert!(GoldenCase::from_bytes(&bytes).is_ok());
    let header_len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let data_start = 8 + header_len;
    for cut in [
        0,
        3,
        8,
        8 + header_len / 2,
        data_start,
        data_start + 8,
        (data_start + bytes.len()) / 2,
        bytes.len() - 1,
    ] {
        assert_rejected(
            &format!("truncated to {cut} bytes"),
            &bytes[..cut],
            "safetensors",
        );
    }

    let mut trailing = bytes.clone();
    trailing.extend_from_slice(&[0; 8]);
    assert_rejected("trailing bytes", &trailing, "safetensors");

    let mut huge = bytes.clone();
    huge[..8].copy_from_slice(&u64::MAX.to_le_bytes());
    assert_rejected("huge header length", &huge, "safetensors");

    let mut garbled = bytes.clone();
    garbled[8..8 + header_len / 2].fill(b'#');
    assert_rejected("garbled header", &garbled, "safetensors");

    let missing = golden_dir().join("no_such_case.safetensors");
    let e = GoldenCase::load(&missing).expect_err("a missing file is an error");
    assert!(e.contains("cannot read"), "{e}");
    let line = error_line("no_such_case.safetensors", &e);
    assert!(
        line.starts_with("ERROR no_such_case.safetensors - - (cannot read"),
        "{line}"
    );
}

/// One tensor of a file: name, dtype, shape, raw little-endian bytes.
type RawTensor = (String, Dtype, Vec<usize>, Vec<u8>);

/// Re-serializes `case` after `edit` changed its metadata and tensors.
fn rewritten(
    case: &str,
    edit: impl FnOnce(&mut std::collections::HashMap<String, String>, &mut Vec<RawTensor>),
) -> Vec<u8> {
    let bytes = bytes_of(case);
    let (_, header) = SafeTensors::read_metadata(&bytes).unwrap();
    let mut metadata = header.metadata().clone().unwrap();
    let file = SafeTensors::deserialize(&bytes).unwrap();
    let mut tensors: Vec<RawTensor> = file
        .iter()
        .map(|(n, v)| {
            (
                n.to_string(),
                v.dtype(),
                v.shape().to_vec(),
                v.data().to_vec(),
            )
        })
        .collect();
    edit(&mut metadata, &mut tensors);
    let views = tensors
        .iter()
        .map(|(n, d, s, b)| (n.clone(), TensorView::new(*d, s.clone(), b).unwrap()));
    safetensors::serialize(views, Some(metadata)).unwrap()
}

fn f64_bytes(values: &[f64]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

fn set_values(tensors: &mut [RawTensor], name: &str, values: &[f64]) {
    let t = tensors.iter_mut().find(|t| t.0 == name).unwrap();
    t.3 = f64_bytes(values);
}

#[test]
fn malformed_contents_are_errors() {
    let case = "rnn_tanh_varlen"; // T = 6, B = 3, lengths [6, 4, 2]
    // The rewrite itself is faithful.
    let same = rewritten(case, |_, _| {});
    let golden = GoldenCase::from_bytes(&same).expect("unchanged rewrite loads");
    assert_eq!(golden.lengths.as_deref(), Some(&[6, 4, 2][..]));

    let without_meta = |key: &'static str| {
        rewritten(case, move |m, _| {
            m.remove(key);
        })
    };
    for key in ["mode", "hidden_size", "varlen", "format", "case"] {
        assert_rejected(&format!("no `{key}`"), &without_meta(key), key);
    }
    let with_meta = |key: &'static str, value: &'static str| {
        rewritten(case, move |m, _| {
            m.insert(key.into(), value.into());
        })
    };
    assert_rejected("unknown mode", &with_meta("mode", "LSTMX"), "mode");
    assert_rejected("non-numeric size", &with_meta("batch", "three"), "batch");
    assert_rejected("zero size", &with_meta("seq_len", "0"), "seq_len");
    assert_rejected("bad bool", &with_meta("bias", "yes"), "bias");
    assert_rejected(
        "other format",
        &with_meta("format", "rnn-golden-v2"),
        "format",
    );
    assert_rejected(
        "wrong shape from metadata",
        &with_meta("hidden_size", "7"),
        "shape",
    );
    assert_rejected(
        "lengths disagree",
        &with_meta("lengths", "6,4,3"),
        "lengths",
    );
    assert_rejected(
        "varlen without lengths",
        &with_meta("varlen", "false"),
        "unexpected",
    );

    for (what, lengths, needle) in [
        ("fractional length", [6.0, 2.5, 2.0], "lengths[1]"),
        ("zero length", [6.0, 4.0, 0.0], "lengths[2]"),
        ("length beyond T", [7.0, 4.0, 2.0], "lengths[0]"),
        ("NaN length", [6.0, f64::NAN, 2.0], "lengths"),
    ] {
        let bytes = rewritten(case, |m, t| {
            m.remove("lengths");
            set_values(t, "lengths", &lengths);
        });
        assert_rejected(what, &bytes, needle);
    }

    let bytes = rewritten(case, |_, t| t.retain(|t| t.0 != "grad.h0"));
    assert_rejected("missing tensor", &bytes, "grad.h0");

    let bytes = rewritten(case, |_, t| {
        let extra = t.iter().find(|t| t.0 == "h0").unwrap().clone();
        t.push(("c0".into(), extra.1, extra.2, extra.3));
    });
    assert_rejected("extra tensor", &bytes, "c0");

    let bytes = rewritten(case, |_, t| {
        let h0 = t.iter_mut().find(|t| t.0 == "h0").unwrap();
        h0.2 = vec![3, 6]; // [B, H] instead of [1, B, H]
    });
    assert_rejected("wrong shape", &bytes, "h0");

    let bytes = rewritten(case, |_, t| {
        let h0 = t.iter_mut().find(|t| t.0 == "h0").unwrap();
        let values: Vec<f32> =
            h0.3.chunks_exact(8)
                .map(|c| f64::from_le_bytes(c.try_into().unwrap()) as f32)
                .collect();
        h0.1 = Dtype::F32;
        h0.2 = vec![2, 3, 6]; // same byte length as the F64 [1, 3, 6]
        h0.3 = values
            .iter()
            .chain(&values)
            .flat_map(|v| v.to_le_bytes())
            .collect();
    });
    assert_rejected("wrong dtype", &bytes, "F32");

    let bytes = rewritten(case, |_, t| {
        let mut h0 = vec![0.5; 18];
        h0[4] = 0.1; // not a float32 value
        set_values(t, "h0", &h0);
    });
    assert_rejected("input not float32-exact", &bytes, "h0");

    let bytes = rewritten(case, |_, t| {
        let mut out = vec![0.0; 6 * 3 * 6];
        out[7] = f64::INFINITY;
        set_values(t, "output", &out);
    });
    assert_rejected("non-finite golden", &bytes, "output");
}

#[test]
fn a_wrong_golden_value_fails() {
    // Guards the comparison itself: one perturbed golden entry must turn PASS into FAIL.
    let case = "rnn_tanh_i3_h5_b2_t4";
    let bytes = rewritten(case, |_, t| {
        let g = t.iter_mut().find(|t| t.0 == "grad.weight_hh_l0").unwrap();
        let mut v: Vec<f64> =
            g.3.chunks_exact(8)
                .map(|c| f64::from_le_bytes(c.try_into().unwrap()))
                .collect();
        v[3] += 1e-3;
        g.3 = f64_bytes(&v);
    });
    let outcome = GoldenCase::from_bytes(&bytes).unwrap().run(None);
    assert!(outcome.failed(), "{}", outcome.line(case));
    let line = outcome.line(case);
    assert!(
        line.starts_with("FAIL ") && line.contains("grad.weight_hh_l0"),
        "{line}"
    );
}
