# run_and_check SCRIPT DEFAULT_OUT BUDGET [ARGS...]: what each example's run.sh does after its setup. Run the
# example's Python script with ARGS, then gate its model on BUDGET: the PCQAT model, or the last of --recipes (a
# recipe file's models are in its stem's folder). Ends with edgeprof check's exit code; a failed run is 2 (an error,
# not a broken limit).
run_and_check() {
    local script="$1" out="$2" budget="$3"
    shift 3
    local gate=pcqat args=("$@") i
    for i in "${!args[@]}"; do
        case "${args[$i]}" in
            --out) out="${args[$((i + 1))]}" ;;
            --recipes) gate="${args[$((i + 1))]##*,}" ;;
        esac
    done
    python "$script" "$@" || exit 2
    echo
    gate="$(basename "$gate" .toml)"
    exec edgeprof check --budget "$budget" "$out/$gate/model.tflite"
}
