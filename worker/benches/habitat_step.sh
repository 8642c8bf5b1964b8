#!/bin/sh
# Times the habitat step of radstudy and of scikit-image + scikit-learn back
# to back: radstudy, then Python, then radstudy again. The load average is
# printed before and after each run, so that the ratios compare runs under
# similar load on a shared machine. /usr/bin/time adds each whole process's CPU
# time (reading the files and, for radstudy, cargo's start included), which
# a loaded machine inflates less than wall time.
#
# Run from the repository root:
#
#     sh worker/benches/habitat_step.sh [PYTHON]
#
# PYTHON is the interpreter with numpy, nibabel, scikit-image and
# scikit-learn (default: python3). Both programs read the data root
# HABITAT_BENCH_DATA_ROOT when it is set, and ../shared/data next to the
# repository otherwise. The Python side runs on one thread:
# the BLAS and OpenMP variables below are set to 1 here and again inside
# habitat_step.py, which also wraps its work in threadpoolctl's limit.
set -eu

python=${1:-python3}
data_root_option=""
if [ -n "${HABITAT_BENCH_DATA_ROOT:-}" ]; then
    data_root_option="--data-root $HABITAT_BENCH_DATA_ROOT"
fi
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1

# Build first, so that compiling is not timed.
cargo bench -p radstudy-worker --bench habitat_step --no-run

load() {
    echo "load average ($1): $(cut -d' ' -f1-3 /proc/loadavg), $(date -u +%H:%M:%S) UTC"
}

# Runs a command under /usr/bin/time; the first argument labels the line.
timed() {
    label=$1
    shift
    /usr/bin/time -f "$label process: %U s user, %S s system, %e s wall" "$@"
}

load "before radstudy"
timed radstudy cargo bench -p radstudy-worker --bench habitat_step -- --per-patient
load "after radstudy, before Python"
# $data_root_option is unquoted on purpose: empty, it adds no argument.
timed Python "$python" worker/benches/habitat_step.py --per-patient $data_root_option
load "after Python, before radstudy"
timed radstudy cargo bench -p radstudy-worker --bench habitat_step -- --per-patient
load "after radstudy"

