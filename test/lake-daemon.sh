# Sourced by the test scripts that run programs against a lakeD.
# lake_start_daemon NAME LOG SOCK CMD...: starts CMD in the background (its
# output into LOG), stops it when the script exits, and waits up to 10 s for
# SOCK; exits 1, saying so and showing LOG, if NAME never opens it.
lake_start_daemon() {
	local name=$1 log=$2 sock=$3
	shift 3
	"$@" >"$log" 2>&1 &
	lake_daemon=$!
	trap 'kill $lake_daemon 2>/dev/null; wait $lake_daemon 2>/dev/null || true' EXIT
	for _ in $(seq 100); do [ -S "$sock" ] && break; sleep 0.1; done
	[ -S "$sock" ] || { echo "FAILED: $name did not open $sock"; cat "$log"; exit 1; }
}
