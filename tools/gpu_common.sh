# gpu_common.sh: what tools/gpu_check.sh and tools/gpu_focus.sh share; sourced, not run.
#   out_init LOG_NAME JSONL_NAME: OUT (default ./out) made and absolute; LOG and JSONL, two
#     emptied files in it; T0, the start (seconds since the epoch).
#   time_limit LIMIT MARGIN: prints LIMIT capped by what DEADLINE (seconds from T0, when set)
#     leaves; prints nothing and fails when fewer than MARGIN seconds are left.

out_init() {
    OUT="${OUT:-./out}"
    mkdir -p "$OUT"
    OUT="$(cd "$OUT" && pwd)"
    LOG="$OUT/$1"
    JSONL="$OUT/$2"
    : >"$LOG"
    : >"$JSONL"
    T0=$(date +%s)
}

time_limit() {
    local limit="$1"
    if [ -n "${DEADLINE:-}" ]; then
        local left=$((DEADLINE - ($(date +%s) - T0)))
        [ "$left" -lt "$2" ] && return 1
        [ "$left" -lt "$limit" ] && limit=$left
    fi
    echo "$limit"
}
