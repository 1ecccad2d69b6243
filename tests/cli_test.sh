#!/bin/sh
# Tests of the `ivfpq` command-line tool (run once by `make test`):
# exit codes and one-line messages for bad input, every input format, exact
# ground truth and its cache, recall in the JSON lines against an
# independent brute force (tests/cli_check.c), plots, and index round trips
# when the library can save/load.
#
# usage: sh tests/cli_test.sh BUILD_DIR
#        IVFPQ_VALGRIND=1 sh tests/cli_test.sh BUILD_DIR   (the tool under valgrind)
set -u
B=${1:-build}
IVFPQ=$B/ivfpq
CHECK=$B/tests/cli_check
T=$(mktemp -d /tmp/ivfpq-cli-test.XXXXXX)
trap 'rm -rf "$T"' EXIT INT TERM
if [ "${IVFPQ_VALGRIND:-0}" = 1 ]; then
    # leaks and memory errors exit 99, which no expected status matches
    printf '#!/bin/sh\nexec valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite,indirect "%s" "$@"\n' \
        "$(cd "$(dirname "$IVFPQ")" && pwd)/ivfpq" >"$T/ivfpq"
    chmod +x "$T/ivfpq"
    IVFPQ=$T/ivfpq
fi
pass=0
fail=0

ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*" >&2; }

# expect CODE SUBSTRING cmd... : exit status CODE, stderr one line containing SUBSTRING
expect() {
    code=$1
    want=$2
    shift 2
    "$@" >"$T/out" 2>"$T/err"
    got=$?
    lines=$(wc -l <"$T/err")
    if [ "$got" -ne "$code" ]; then
        bad "$* -> exit $got, expected $code: $(cat "$T/err")"
    elif [ "$code" -ne 0 ] && [ "$lines" -ne 1 ]; then
        bad "$* -> $lines lines on stderr, expected 1: $(cat "$T/err")"
    elif ! grep -qF -- "$want" "$T/err"; then
        bad "$* -> message lacks \"$want\": $(cat "$T/err")"
    else
        ok
    fi
}

# run cmd... : must succeed
run() {
    if "$@" >"$T/out" 2>"$T/err"; then ok; else bad "$* -> exit $?: $(cat "$T/err")"; fi
}

D=$T/data
mkdir -p "$D"
$CHECK gen "$D" || { echo "cannot generate data" >&2; exit 1; }
$CHECK bad "$D" || { echo "cannot generate bad files" >&2; exit 1; }
FAST="--min-time 0 --runs 1 --no-latency --quiet"

# ------------------------------------------------------------ usage, help
expect 2 "usage: ivfpq COMMAND" "$IVFPQ"
expect 2 'unknown command "frob"' "$IVFPQ" frob
for c in build search bench info convert plot; do
    run "$IVFPQ" $c --help
    grep -q "Exit status: 0 ok, 1 runtime error, 2 usage error, 3 bad input file" "$T/out" || bad "$c --help lacks the exit codes"
done
expect 2 "unknown option --bogus" "$IVFPQ" bench --bogus
expect 2 "needs -i BASE" "$IVFPQ" bench -i "$D/base.fvecs"
expect 2 "bad list" "$IVFPQ" bench -i "$D/base.fvecs" -q "$D/query.fvecs" -f Flat --nprobe 1,x
expect 2 "unknown metric" "$IVFPQ" bench -i "$D/base.fvecs" -q "$D/query.fvecs" -f Flat -m hamming
expect 2 "option --nprobe needs a value" "$IVFPQ" bench -i "$D/base.fvecs" -q "$D/query.fvecs" -f Flat --nprobe
# bad factory strings: usage errors, after the library explains
"$IVFPQ" bench -i "$D/base.fvecs" -q "$D/query.fvecs" -f "IVF8,PQ7x4fs" $FAST >"$T/out" 2>"$T/err"
[ $? -eq 2 ] && grep -q 'IVF8,PQ7x4fs' "$T/err" && [ "$(wc -l <"$T/err")" -eq 1 ] && ok ||
    bad "bad factory string: $(cat "$T/err")"
"$IVFPQ" bench -i "$D/base.fvecs" -q "$D/query.fvecs" -f Flat "Bogus" $FAST --gt-cache "$T" >"$T/out" 2>"$T/err"
[ $? -eq 2 ] && ok || bad "factory Bogus: $(cat "$T/err")"
set -- "$T"/*.gt-*
[ -e "$1" ] && bad "a bad factory string must fail before the ground truth is computed" || ok

# ------------------------------------------------------------ bad input files
expect 3 "$D/missing.npy: cannot open" "$IVFPQ" bench -i "$D/missing.npy" -q "$D/query.fvecs" -f Flat
expect 3 "$D/f8.npy: dtype '<f8' (float64) is not float32" "$IVFPQ" bench -i "$D/f8.npy" -q "$D/query.fvecs" -f Flat
expect 3 "$D/fortran.npy: fortran_order is True" "$IVFPQ" bench -i "$D/fortran.npy" -q "$D/query.fvecs" -f Flat
expect 3 "$D/trunc.npy: truncated at byte 374" "$IVFPQ" bench -i "$D/trunc.npy" -q "$D/query.fvecs" -f Flat
expect 3 "$D/lfs.npy: is a Git LFS pointer" "$IVFPQ" bench -i "$D/lfs.npy" -q "$D/query.fvecs" -f Flat
expect 3 "$D/mixdir/b.npy: d = 15, but a.npy has d = 16" "$IVFPQ" bench -i "$D/mixdir" -q "$D/query.fvecs" -f Flat
expect 3 "$D/query.fvecs: d = 16, but the base vectors" "$IVFPQ" bench -i "$D/mixdir/b.npy" -q "$D/query.fvecs" -f Flat
head -c 1000 "$D/base.fvecs" >"$D/cut.fvecs"
expect 3 "$D/cut.fvecs: truncated at byte 1000" "$IVFPQ" bench -i "$D/cut.fvecs" -q "$D/query.fvecs" -f Flat
expect 3 "$D/base.fvecs: holds float vectors, expected int32 ids" \
    "$IVFPQ" bench -i "$D/base.fvecs" -q "$D/query.fvecs" -f Flat --gt "$D/base.fvecs"
printf '1,2,3\n' >"$D/base.csv"
expect 3 "$D/base.csv: unknown file type" "$IVFPQ" bench -i "$D/base.csv" -q "$D/query.fvecs" -f Flat
cp "$D/query.npy" "$D/query_noext"   # no extension: .npy recognised by its magic
run "$IVFPQ" bench -i "$D/base.fvecs" -q "$D/query_noext" -f Flat $FAST --gt-cache none --json "$D/noext.jsonl"
$CHECK json "$D/noext.jsonl" factory=Flat -- recall_at_1=1 k_recall_at_k=1 && ok || bad "queries without extension"

# ------------------------------------------- exact ground truth and its cache
$CHECK knn "$D/base.fvecs" "$D/query.fvecs" 10 l2 "$D/bf.ivecs" || bad "brute force"
run "$IVFPQ" bench -i "$D/base.fvecs" -q "$D/query.fvecs" -f Flat "IVF8,Flat" --nprobe 1,8 $FAST --json "$D/a.jsonl"
set -- "$D"/query.fvecs.gt-*.ivecs
[ $# -eq 1 ] && [ -f "$1" ] && ok || bad "expected one ground-truth cache beside the queries, found: $*"
CACHE=$1
$CHECK same "$CACHE" "$D/bf.ivecs" && ok || bad "cached ground truth differs from brute force"
head -c 440 "$D/bf.ivecs" >"$D/short.ivecs"
expect 3 "$D/short.ivecs: 10 rows of ground truth for 50 queries" \
    "$IVFPQ" bench -i "$D/base.fvecs" -q "$D/query.fvecs" -f Flat --gt "$D/short.ivecs"
$CHECK json "$D/a.jsonl" factory=Flat -- recall_at_1=1 k_recall_at_k=1 qps=+ && ok || bad "Flat recall"
# nprobe = nlist visits every list: exact
$CHECK json "$D/a.jsonl" factory=IVF8,Flat nprobe=8 -- recall_at_1=1 k_recall_at_k=1 && ok || bad "IVF8 nprobe 8"
if command -v python3 >/dev/null 2>&1; then
    python3 -c '
import json, sys
need = "factory metric d nb nq k nprobe k_factor threads simd recall_at_1 k_recall_at_k qps train_s add_s bytes_per_vector".split()
rows = [json.loads(l) for l in open(sys.argv[1])]
assert len(rows) == 3, len(rows)
for r in rows:
    missing = [k for k in need if k not in r]
    assert not missing, missing
' "$D/a.jsonl" && ok || bad "JSON lines do not parse or lack fields"
fi
# the same sweep with the brute force given as --gt: identical recall
run "$IVFPQ" bench -i "$D/base.fvecs" -q "$D/query.fvecs" -f "IVF8,Flat" --nprobe 1 $FAST --json "$D/b.jsonl" --gt "$D/bf.ivecs"
R1=$(sed -n 's/.*"recall_at_1": \([0-9.e-]*\).*"k_recall_at_k": \([0-9.e-]*\).*/\1 \2/p' "$D/b.jsonl")
$CHECK json "$D/a.jsonl" factory=IVF8,Flat nprobe=1 -- recall_at_1=${R1% *} k_recall_at_k=${R1#* } && ok ||
    bad "recall with --gt differs from recall with computed ground truth"
# recall definitions, against a ground truth whose answer is known
EXP=$($CHECK perturb "$D/bf.ivecs" 10 "$D/perturbed.ivecs") || bad "perturb"
run "$IVFPQ" bench -i "$D/base.fvecs" -q "$D/query.fvecs" -f Flat $FAST --json "$D/c.jsonl" --gt "$D/perturbed.ivecs"
$CHECK json "$D/c.jsonl" factory=Flat -- recall_at_1=${EXP% *} k_recall_at_k=${EXP#* } && ok ||
    bad "recall against a known ground truth (expected $EXP)"
# --max-queries: a prefix of the queries and of the ground truth
run "$IVFPQ" bench -i "$D/base.fvecs" -q "$D/query.fvecs" -f Flat $FAST --json "$D/m.jsonl" --gt "$D/perturbed.ivecs" --max-queries 20
$CHECK json "$D/m.jsonl" factory=Flat nq=20 -- recall_at_1=0.5 k_recall_at_k=0.875 && ok || bad "--max-queries 20"
# the cache is reused, and a corrupt or stale one is not trusted
"$IVFPQ" bench -i "$D/base.fvecs" -q "$D/query.fvecs" -f Flat --min-time 0 --runs 1 --no-latency >/dev/null 2>"$T/err"
grep -q "ground truth from cache" "$T/err" && ok || bad "cache not used: $(cat "$T/err")"
head -c 100 "$CACHE" >"$T/x" && cp "$T/x" "$CACHE"
"$IVFPQ" bench -i "$D/base.fvecs" -q "$D/query.fvecs" -f Flat --min-time 0 --runs 1 --no-latency >/dev/null 2>"$T/err"
grep -q "ignoring unusable ground-truth cache" "$T/err" && ok || bad "corrupt cache used: $(cat "$T/err")"
$CHECK same "$CACHE" "$D/bf.ivecs" && ok || bad "corrupt cache not rewritten"
cp "$D/query.fvecs" "$D/query.orig"
mkdir "$T/other" && $CHECK gen "$T/other" && cp "$T/other/iquery.fvecs" "$D/query.fvecs"
run "$IVFPQ" bench -i "$D/base.fvecs" -q "$D/query.fvecs" -f Flat $FAST
set -- "$D"/query.fvecs.gt-*.ivecs
[ $# -eq 2 ] && ok || bad "changed queries must get a new cache key (found $#)"
cp "$D/query.orig" "$D/query.fvecs"
# --gt-cache none leaves no file; a cache dir holds it
run "$IVFPQ" bench -i "$D/base.fvecs" -q "$D/query.npy" -f Flat $FAST --gt-cache none
set -- "$D"/query.npy.gt-*
[ -e "$1" ] && bad "--gt-cache none wrote $1" || ok
mkdir "$T/cache"
run "$IVFPQ" bench -i "$D/base.fvecs" -q "$D/query.npy" -f Flat $FAST --gt-cache "$T/cache"
set -- "$T/cache"/query.npy.gt-*.ivecs
[ -f "$1" ] && ok || bad "no cache in --gt-cache dir"
$CHECK same "$1" "$D/bf.ivecs" && ok || bad "ground truth for .npy queries differs"

# -------------------------------------------- every input format, same data
for f in ibase.fvecs ibase.npy ibase.fbin ibase.bvecs ibase.u8bin ibase_dir; do
    run "$IVFPQ" bench -i "$D/$f" -q "$D/iquery.fvecs" -f "IVF8,Flat" --nprobe 2 $FAST --json "$D/fmt-$f.jsonl"
    sed 's/"base": "[^"]*", //' "$D/fmt-$f.jsonl" | sed 's/"qps": [^,]*, //; s/"train_s": [^,]*, //; s/"add_s": [^,]*, //' >"$D/fmt-$f.norm"
done
set -- "$D"/iquery.fvecs.gt-*.ivecs
[ $# -eq 1 ] && ok || bad "formats of the same data gave $# different ground-truth keys"
for f in ibase.npy ibase.fbin ibase.bvecs ibase.u8bin ibase_dir; do
    cmp -s "$D/fmt-ibase.fvecs.norm" "$D/fmt-$f.norm" && ok || bad "$f: results differ from .fvecs"
done

# ------------------------------------------------------------- cosine
$CHECK knn "$D/base.fvecs" "$D/query.fvecs" 5 cos "$D/bf-cos.ivecs" || bad "brute force cos"
run "$IVFPQ" bench -i "$D/base.fvecs" -q "$D/query.fvecs" -f Flat -m cos -k 5 $FAST --json "$D/cos.jsonl" --gt-cache "$T/cache"
set -- "$T/cache"/query.fvecs.gt-*.ivecs
$CHECK same "$1" "$D/bf-cos.ivecs" && ok || bad "cosine ground truth differs from brute force"
$CHECK json "$D/cos.jsonl" factory=Flat metric=cos k=5 -- recall_at_1=1 k_recall_at_k=1 && ok || bad "cos recall"

# ----------------------------------------- a PQ sweep with threads, latency, plot
run "$IVFPQ" bench -i "$D/base.fvecs" -q "$D/query.fvecs" -f "IVF8,PQ8x4fs,RFlat" --nprobe 1-8 --k-factor 1,4 \
    --threads 2 --batch 16 --min-time 0 --runs 1 --quiet --json "$D/pq.jsonl" --plot "$D/pq.svg" --train-rows 1000
[ "$(wc -l <"$D/pq.jsonl")" -eq 16 ] && ok || bad "expected 16 rows (4 nprobe x 2 k_factor x 2 thread counts)"
grep -q "| 8 | 4 |" "$T/out" && ok || bad "Markdown table lacks the nprobe 8, k_factor 4 row"
$CHECK json "$D/pq.jsonl" nprobe=8 k_factor=4 threads=2 -- qps=+ && ok || bad "2-thread row"
head -c 4 "$D/pq.svg" | grep -q "<svg" && grep -q "IVF8,PQ8x4fs,RFlat" "$D/pq.svg" && ok || bad "plot"
grep -q '"lat1_p50_us": [0-9]' "$D/pq.jsonl" && ok || bad "latency not measured"
run "$IVFPQ" plot -o "$D/re.svg" "$D/pq.jsonl" "$D/a.jsonl"
grep -c "<polyline" "$D/re.svg" | grep -q "^8$" && ok || bad "plot of 2 files: expected 4 curves x 2 panels"
printf '{"engine": "faiss", "factory": "IVF8,Flat", "nprobe": 1, "k_factor": 1, "threads": 1, "recall_at_1": 0.5, "k_recall_at_k": 0.5, "qps": 1000}\n' >"$D/f.jsonl"
run "$IVFPQ" bench -i "$D/base.fvecs" -q "$D/query.fvecs" -f "IVF8,Flat" --nprobe 1 $FAST --plot "$D/f.svg" --faiss-json "$D/f.jsonl"
grep -q 'stroke-dasharray' "$D/f.svg" && ok || bad "faiss curve missing from the plot"
echo 'not json' >"$D/nj.jsonl"
expect 3 "$D/nj.jsonl: line 1 is not a JSON object" "$IVFPQ" plot -o "$D/x.svg" "$D/nj.jsonl"

# ------------------------------------------ bench/compare_faiss.py (if faiss is there)
PYF=${PYTHON_FAISS:-/usr/bin/python3}
if "$PYF" -c "import faiss, numpy" >/dev/null 2>&1; then
    run "$PYF" "$(dirname "$0")/../bench/compare_faiss.py" -i "$D/ibase_dir" -q "$D/iquery.fvecs" -f Flat "IVF8,Flat" \
        --nprobe 2,8 --min-time 0 --runs 1 --json "$D/faiss.jsonl" --ivfpq-json "$D/fmt-ibase.fvecs.jsonl" \
        --ivfpq "$IVFPQ" --plot "$D/both.svg"
    grep -q "faiss 1\|faiss [0-9]" "$T/out" && grep -q "compile options" "$T/out" && ok || bad "compare_faiss.py header"
    grep -q "^| IVF8,Flat | 2 | 1 | [0-9.]* | [0-9.]* |" "$T/out" && ok || bad "compare_faiss.py merged table: $(cat "$T/out")"
    $CHECK json "$D/faiss.jsonl" engine=faiss factory=Flat -- recall_at_1=1 k_recall_at_k=1 && ok || bad "faiss Flat recall"
    grep -q 'stroke-dasharray' "$D/both.svg" && ok || bad "compare_faiss.py --plot"
else
    echo "note: $PYF cannot import faiss: compare_faiss.py not tested"
fi

# progress bars only on a terminal: stderr to a file holds notes, no bar
"$IVFPQ" bench -i "$D/base.fvecs" -q "$D/query.fvecs" -f "IVF8,PQ8x4fs" --nprobe 1 --min-time 0 --runs 1 \
    --no-latency --gt-cache none >/dev/null 2>"$T/err"
if grep -q "computing exact ground truth" "$T/err" && ! grep -q "\[#" "$T/err" && ! tr '\r' '\n' <"$T/err" | grep -q "train"; then ok
else bad "progress bar drawn on a non-terminal: $(cat "$T/err")"; fi
if command -v script >/dev/null 2>&1; then # a pseudo-terminal: bars for each stage
    script -qc "$IVFPQ bench -i $D/base.fvecs -q $D/query.fvecs -f IVF8,PQ8x4fs --nprobe 1 --min-time 0 --runs 1 --no-latency --gt-cache none" \
        /dev/null </dev/null >"$T/tty" 2>&1
    if grep -q "computing exact ground truth" "$T/tty"; then
        for stage in "ground truth" "train coarse" "train pq" "add"; do
            tr '\r' '\n' <"$T/tty" | grep -q "^$stage *\[#*\.*\] [0-9]*/[0-9]*" && ok || bad "no progress bar for $stage on a terminal"
        done
    else
        echo "note: script(1) could not run the tool on a pseudo-terminal here; progress bars not tested"
    fi
fi

# ------------------------------------------------------------- info
run "$IVFPQ" info --cpu
grep -q "simd in use" "$T/out" && ok || bad "info --cpu"

# ------------------------------------------------- index files (build/search)
if "$IVFPQ" build -f Flat -i "$D/base.fvecs" -o "$D/flat.index" --quiet >"$T/out" 2>"$T/err"; then
    run "$IVFPQ" info "$D/flat.index"
    grep -q "ntotal: *2000" "$T/out" && ok || bad "info of a built index"
    run "$IVFPQ" search -x "$D/flat.index" -q "$D/query.fvecs" -k 10 --gt "$D/bf.ivecs" -o "$D/res.ivecs" --min-time 0 --runs 1
    grep -q "R@1 = 1.0000" "$T/out" && ok || bad "search of a Flat index: $(cat "$T/out")"
    $CHECK same "$D/res.ivecs" "$D/bf.ivecs" && ok || bad "search -o ids differ from brute force"
    # build + search of a saved index = the in-memory bench (same seeded sample)
    run "$IVFPQ" build -f "IVF8,PQ8x4fs,RFlat" -i "$D/ibase_dir" -o "$D/pq.index" --train-rows 1500 --quiet
    run "$IVFPQ" bench -f "IVF8,PQ8x4fs,RFlat" -i "$D/ibase_dir" -q "$D/iquery.fvecs" --train-rows 1500 \
        --nprobe 2 --k-factor 2 $FAST --json "$D/rt.jsonl" --gt-cache "$T/cache"
    set -- "$T/cache"/iquery.fvecs.gt-*.ivecs
    IGT=$1
    R=$(sed -n 's/.*"recall_at_1": \([0-9.e-]*\).*"k_recall_at_k": \([0-9.e-]*\).*/\1 \2/p' "$D/rt.jsonl")
    for x in pq.index pq.faiss; do
        [ $x = pq.faiss ] && run "$IVFPQ" convert "$D/pq.index" "$D/pq.faiss" --format faiss
        run "$IVFPQ" search -x "$D/$x" -q "$D/iquery.fvecs" -k 10 --nprobe 2 --k-factor 2 --gt "$IGT" \
            -o "$D/res-$x.ivecs" --min-time 0 --runs 1
        awk -v r1="${R% *}" -v rk="${R#* }" '/^R@1 = / { ok = ($3 - r1 < 1e-4 && r1 - $3 < 1e-4 && $6 - rk < 1e-4 && rk - $6 < 1e-4) }
            END { exit !ok }' "$T/out" && ok || bad "$x: search recall $(grep R@1 "$T/out") != bench recall $R"
    done
    $CHECK same "$D/res-pq.index.ivecs" "$D/res-pq.faiss.ivecs" && ok || bad "native and faiss files answer differently"
    expect 3 "$D/base.fvecs: not an index" "$IVFPQ" search -x "$D/base.fvecs" -q "$D/query.fvecs"
    expect 3 "$D/nothing.index" "$IVFPQ" info "$D/nothing.index"
    head -c 300 "$D/pq.index" >"$D/cut.index"
    expect 3 "$D/cut.index" "$IVFPQ" info "$D/cut.index"
    expect 3 "$D/mixdir/b.npy: d = 15, but the index" "$IVFPQ" search -x "$D/pq.index" -q "$D/mixdir/b.npy"
else
    grep -q "not supported by this build" "$T/err" && ok || bad "build without save/load: $(cat "$T/err")"
    echo "note: index files not available in this build (library lacks ivfpq_save_file); round trips skipped"
fi

echo "cli: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
