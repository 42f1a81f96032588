#!/usr/bin/env bash
# Two builds' bench_table against each other, each run classed by where the host put the two
# vCPUs: near or far apart (the far state of src/kernels/threads.rs' meeting timer).
#   bash benches/far_ab.sh A_BIN B_BIN SECONDS WORKLOAD...
# A_BIN, B_BIN: two bench_table binaries (copy target/release/examples/bench_table aside
# between builds; or one binary twice with A_THREADS=1 to set one thread against two). For
# SECONDS, alternates A and B runs of
#   taskset -c 0,1 BIN --threads ${A_THREADS:-2} (or ${B_THREADS:-2}) --modes ${MODES:-infer,train} \
#       --target-s ${TARGET_S:-0.1} WORKLOAD...
# each between two one-probe runs of examples/round_trip (one cache line handed back and forth
# 200 000 times): far = both probes >= ${FAR_NS:-250} ns, near = both < ${NEAR_NS:-150},
# else mixed. Raw lines go to ${RAW:-a temporary file} ("== A|B PROBE1 PROBE2", then
# bench_table's lines); stdout: per class, workload and mode, the median ms of A and of B,
# their run counts and B/A.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ $# -lt 4 ]; then
    sed -n '2,14p' "$0" >&2
    exit 2
fi
A=$1 B=$2 SECONDS_=$3
shift 3
RAW=${RAW:-$(mktemp)}
cargo build --release --example round_trip >&2
RT=target/release/examples/round_trip
probe() { taskset -c 0,1 "$RT" --probes 1 | awk '{ printf "%d", $2 }'; }
end=$(($(date +%s) + SECONDS_))
: >"$RAW"
while [ "$(date +%s)" -lt "$end" ]; do
    for tag in A B; do
        if [ "$tag" = A ]; then bin=$A threads=${A_THREADS:-2}; else bin=$B threads=${B_THREADS:-2}; fi
        before=$(probe)
        out=$(taskset -c 0,1 "$bin" --threads "$threads" --modes "${MODES:-infer,train}" \
            --target-s "${TARGET_S:-0.1}" "$@" 2>/dev/null | grep '^rnn-kernels ')
        after=$(probe)
        { echo "== $tag $before $after"; echo "$out"; } >>"$RAW"
    done
done
echo "raw lines: $RAW" >&2
echo "class workload mode A_median_ms A_runs B_median_ms B_runs B/A"
awk -v far="${FAR_NS:-250}" -v near="${NEAR_NS:-150}" '
    function median(list,   n, v, i, j, t) {
        n = split(list, v, " ")
        for (i = 2; i <= n; i++) for (j = i; j > 1 && v[j] + 0 < v[j - 1] + 0; j--) {
            t = v[j]; v[j] = v[j - 1]; v[j - 1] = t
        }
        return (n % 2) ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
    }
    $1 == "==" {
        tag = $2
        cls = ($3 >= far && $4 >= far) ? "far" : (($3 < near && $4 < near) ? "near" : "mixed")
        next
    }
    $1 == "rnn-kernels" {
        key = cls " " $2 " " $3
        seen[key] = 1
        runs[key, tag] = runs[key, tag] " " $5
        count[key, tag]++
    }
    END {
        for (key in seen) {
            a = (count[key, "A"] > 0) ? median(substr(runs[key, "A"], 2)) : 0
            b = (count[key, "B"] > 0) ? median(substr(runs[key, "B"], 2)) : 0
            printf "%s %.4f %d %.4f %d %s\n", key, a, count[key, "A"], b, count[key, "B"],
                (a > 0 && b > 0) ? sprintf("%.3f", b / a) : "-"
        }
    }' "$RAW" | sort
