#!/usr/bin/env bash
# The README's benchmark table: rnn-kernels against oneDNN 3.2 on the anchors' rnn workloads,
# 1 and 2 threads, infer and train, in one sitting, interleaved, PASSES passes (default 2).
#   bash benches/compare_onednn.sh [RAW_OUT]       (prints the markdown table on stdout)
# WORKLOADS (comma-separated rnn_hH_bB_tT[_iI] ids) replaces the anchors' seven rnn rows;
# ANCHOR_TARGET_S (seconds of samples per line, default 1) is read by both benches.
# Needs the anchors harness (ANCHORS, default ../shared/anchors; its setup.sh installs oneDNN
# 3.2 from the package registry). Each engine's figure is the lower of its per-pass medians;
# pinning as the anchors pin: core 0 for 1 thread, cores 0,1 for 2.
set -euo pipefail
cd "$(dirname "$0")/.."
ANCHORS=${ANCHORS:-../shared/anchors}
PASSES=${PASSES:-2}
RAW=${1:-$(mktemp)}
WL=${WORKLOADS:-rnn_h32_b1_t672,rnn_h64_b1_t96,rnn_h256_b1_t150,rnn_h512_b16_t50,rnn_h512_b64_t50,rnn_h1760_b16_t50,rnn_h1760_b64_t50}
cargo build --release --example bench_table >&2
B=target/release/examples/bench_table
: >"$RAW"
for pass in $(seq "$PASSES"); do
    for n in 1 2; do
        cpus=$(seq -s, 0 $((n - 1)))
        echo "# pass $pass threads $n $(date -u +%T) load $(cut -d' ' -f1 /proc/loadavg)" >&2
        taskset -c "$cpus" "$B" --threads "$n" --modes infer,train ${WL//,/ } 2>/dev/null >>"$RAW"
        "$ANCHORS/run.sh" onednn32 "$WL" "$n" 2>/dev/null | grep '^onednn32 ' >>"$RAW"
        "$ANCHORS/run.sh" machine all "$n" 2>/dev/null | grep '^machine fma_peak' >>"$RAW" || true
    done
done
awk -v wl="$WL" '
    $1 == "machine" { if (!($4 in peak) || $7 > peak[$4]) peak[$4] = $7; next }
    { key = $2 " " $3 " " $4
      e = ($1 == "rnn-kernels") ? "c" : "o"
      if (!((e, key) in ms) || $5 < ms[e, key]) { ms[e, key] = $5; gf[e, key] = $7 } }
    END {
      print "| workload | mode | threads | rnn-kernels ms | oneDNN 3.2 ms | oneDNN / rnn-kernels | rnn-kernels GFLOP/s | 2 threads / 1 thread |"
      print "|---|---|---|---:|---:|---:|---:|---:|"
      n = split(wl, w, ",")
      for (i = 1; i <= n; i++) for (m = 1; m <= 2; m++) for (t = 1; t <= 2; t++) {
        mode = (m == 1) ? "infer" : "train"; key = w[i] " " mode " " t
        c = ms["c", key]; o = ms["o", key]
        sc = (t == 2 && ms["c", w[i] " " mode " 1"] > 0 && c > 0) ? sprintf("%.2fx", ms["c", w[i] " " mode " 1"] / c) : ""
        printf "| %s | %s | %d | %.4f | %s | %s | %.1f | %s |\n", w[i], mode, t, c,
          (o == "" ? "n/a" : sprintf("%.4f", o)), (o == "" ? "n/a" : sprintf("%.2fx", o / c)), gf["c", key], sc
      }
      printf "\nFMA peak probe (anchors machine_probe, best of passes): 1 thread %.0f GFLOP/s, 2 threads %.0f GFLOP/s.\n", peak[1], peak[2]
    }' "$RAW"
