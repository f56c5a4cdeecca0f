#!/usr/bin/env bash
# mock_kafka_selftest: checks build/mock_kafka against independent Kafka
# clients (kcat, Python's confluent-kafka), on 127.0.0.1 only. Builds
# nothing. Usage: mock_kafka_selftest.sh PATH/TO/mock_kafka
# Last line: "N passed, N failed"; exit 0 only when nothing failed.
set -u

bin=${1:?usage: mock_kafka_selftest.sh PATH/TO/mock_kafka}
python=/usr/bin/python3
passed=0
failed=0
tmp=$(mktemp -d)
pids=()

ok() { # ok NAME CONDITION-EXIT-CODE [DETAIL]
    if [ "$2" -eq 0 ]; then
        passed=$((passed + 1))
        echo "ok   $1"
    else
        failed=$((failed + 1))
        echo "FAIL $1${3:+: $3}"
    fi
}

cleanup() {
    for pid in "${pids[@]}"; do
        kill "$pid" 2>/dev/null
    done
    rm -rf "$tmp"
}
trap cleanup EXIT

# Sends one command to the coprocess and reads its one-line answer.
# A mock that died leaves reply empty, and the check fails.
send() {
    reply=
    if [ -z "${MOCK[1]:-}" ] || [ -z "${MOCK[0]:-}" ]; then
        return
    fi
    { echo "$1" >&"${MOCK[1]}"; } 2>/dev/null || return
    IFS= read -r -t 10 reply <&"${MOCK[0]}"
}

# Waits up to 10 s for pid to exit; sets status to its exit code, or 124.
wait_exit() {
    for _ in $(seq 100); do
        if ! kill -0 "$1" 2>/dev/null; then
            wait "$1"
            status=$?
            return
        fi
        sleep 0.1
    done
    status=124
}

[ -x "$bin" ] || { echo "not executable: $bin"; echo "0 passed, 1 failed"; exit 1; }

# --- usage errors exit 2 with a message on stderr
"$bin" --brokers 0 </dev/null >"$tmp/usage.out" 2>"$tmp/usage.err"
ok "usage error exits 2" $(($? != 2))
grep -q -- '--brokers' "$tmp/usage.err"
ok "usage error says why on stderr" $? "$(cat "$tmp/usage.err")"
"$bin" --topic 't:x' </dev/null >/dev/null 2>&1
ok "bad partition count exits 2" $(($? != 2))

# --- a 3-broker cluster with t:8, driven through a pipe on stdin
coproc MOCK { exec "$bin" --brokers 3 --topic t:8 --ready-file "$tmp/ready" 2>"$tmp/mock.err"; }
# shellcheck disable=SC2153 # MOCK_PID is set by coproc
mock_pid=$MOCK_PID
pids+=("$mock_pid")
ready=
IFS= read -r -t 10 ready <&"${MOCK[0]}"
[[ $ready =~ ^bootstrap=127\.0\.0\.1:[0-9]+(,127\.0\.0\.1:[0-9]+){2}$ ]]
ok "ready line is bootstrap= with 3 loopback brokers" $? "$ready"
bootstrap=${ready#bootstrap=}
[ "$(cat "$tmp/ready" 2>/dev/null)" = "$bootstrap" ]
ok "ready file holds the same bootstrap list" $?
! compgen -G "$tmp/ready.tmp.*" >/dev/null
ok "no temporary ready file left behind" $?

if command -v ss >/dev/null; then
    listen=$(ss -Hltnp | grep "pid=$mock_pid," | awk '{print $4}')
    n_listen=$(echo "$listen" | grep -c .)
    n_loop=$(echo "$listen" | grep -c '^127\.0\.0\.1:')
    [ "$n_listen" -eq 3 ] && [ "$n_loop" -eq 3 ]
    ok "listens on 3 sockets, all 127.0.0.1" $? "${listen//$'\n'/ }"
fi

# --- kcat: metadata, produce, consume
kcat -b "$bootstrap" -L -t t >"$tmp/meta" 2>&1
n=$(grep -c '^    partition ' "$tmp/meta")
[ "$n" -eq 8 ]
ok "kcat -L shows 8 partitions for t" $? "got $n"

printf 'm1\nm2\nm3\nm4\nm5\n' | kcat -b "$bootstrap" -P -t t -p 5 2>"$tmp/kcat.err"
ok "kcat produces 5 messages" $? "$(cat "$tmp/kcat.err")"
got=$(timeout 20 kcat -b "$bootstrap" -C -t t -p 5 -o beginning -e -q 2>/dev/null | tr '\n' ' ')
[ "$got" = "m1 m2 m3 m4 m5 " ]
ok "kcat consumes them back in order" $? "got '$got'"

# --- confluent-kafka: a consumer group commits, a new member reads it back
cat >"$tmp/group.py" <<'EOF'
import os, sys, time
from confluent_kafka import Consumer, TopicPartition

bootstrap, topic, want = sys.argv[1], sys.argv[2], int(sys.argv[3])
group = "selftest-%d" % os.getpid()
conf = {"bootstrap.servers": bootstrap, "group.id": group,
        "enable.auto.commit": False, "auto.offset.reset": "earliest",
        "session.timeout.ms": 6000}
c = Consumer(conf)
c.subscribe([topic])
got = []
deadline = time.time() + 30  # the mock delays a group's first join ~3 s
while len(got) < want and time.time() < deadline:
    m = c.poll(0.5)
    if m is None or m.error():
        continue
    got.append(m)
if len(got) < want:
    print("consumed %d of %d" % (len(got), want))
    sys.exit(1)
last = got[-1]
c.commit(message=last, asynchronous=False)
c.close()

c2 = Consumer(conf)
tps = c2.committed([TopicPartition(topic, last.partition())], timeout=10)
c2.close()
off = tps[0].offset
print("group=%s partition=%d committed=%d expected=%d"
      % (group, last.partition(), off, last.offset() + 1))
sys.exit(0 if off == last.offset() + 1 else 1)
EOF
out=$(timeout 60 "$python" "$tmp/group.py" "$bootstrap" t 5 2>&1)
ok "consumer group commits and a new member reads the committed offset" $? "$out"
echo "     $out" | tail -1

# --- control commands
send "broker_down 2"
[ "$reply" = ok ]
ok "broker_down 2 answers ok" $? "$reply"
send "broker_up 2"
[ "$reply" = ok ]
ok "broker_up 2 answers ok" $? "$reply"
send "broker_down 7"
[[ $reply == error:* ]]
ok "broker_down 7 (no such broker) answers error" $? "$reply"
send "push_errors 0 2 6"
[ "$reply" = ok ]
ok "push_errors 0 2 6 answers ok" $? "$reply"
printf 'after-errors\n' | timeout 20 kcat -b "$bootstrap" -P -t t -p 0 2>/dev/null
ok "produce succeeds after 2 injected NOT_LEADER errors (retried)" $?
send "push_errors 0 1 10"
[ "$reply" = ok ]
ok "push_errors 0 1 10 answers ok" $? "$reply"
! printf 'rejected\n' | timeout 20 kcat -b "$bootstrap" -P -t t -p 0 2>"$tmp/kcat.err" &&
    grep -q 'Message size too large' "$tmp/kcat.err"
ok "the injected MSG_SIZE_TOO_LARGE reaches the producer" $? "$(cat "$tmp/kcat.err")"
send "push_errors 8 2 1 2 3"
[[ $reply == error:* ]]
ok "push_errors with a wrong count answers error" $? "$reply"
send "partition_leader t 0 3"
[ "$reply" = ok ]
ok "partition_leader t 0 3 answers ok" $? "$reply"
send "partition_leader absent 0 1"
[[ $reply == error:* ]]
ok "partition_leader on an unknown topic answers error (no silent create)" $? "$reply"
send "create_topic extra 3"
[ "$reply" = ok ]
ok "create_topic extra 3 answers ok" $? "$reply"
n=$(kcat -b "$bootstrap" -L -t extra 2>&1 | grep -c '^    partition ')
[ "$n" -eq 3 ]
ok "created topic has 3 partitions" $? "got $n"
send "create_topic extra 5"
[[ $reply == error:* ]]
ok "create_topic on an existing topic answers error" $? "$reply"
send "bootstrap"
[ "$reply" = "$ready" ]
ok "bootstrap repeats the ready line" $? "$reply"
send "no_such_command"
[[ $reply == error:* ]]
ok "an unknown command answers error" $? "$reply"
send "quit"
[ "$reply" = ok ]
ok "quit answers ok" $? "$reply"
wait_exit "$mock_pid"
[ "$status" -eq 0 ]
ok "quit exits 0" $? "status $status"
grep -v '^$' "$tmp/mock.err" >"$tmp/mock.err.nonempty"
[ ! -s "$tmp/mock.err.nonempty" ]
ok "nothing logged on stderr" $? "$(head -3 "$tmp/mock.err")"

# --- stop conditions
"$bin" --no-stdin >"$tmp/sig.out" 2>&1 </dev/null &
sig_pid=$!
pids+=("$sig_pid")
for _ in $(seq 50); do grep -q bootstrap= "$tmp/sig.out" && break; sleep 0.1; done
sleep 0.3
kill -0 "$sig_pid" 2>/dev/null
ok "--no-stdin keeps running with stdin at /dev/null" $?
kill -TERM "$sig_pid"
wait_exit "$sig_pid"
[ "$status" -eq 0 ]
ok "SIGTERM exits 0" $? "status $status"

"$bin" </dev/null >"$tmp/eof.out" 2>&1 &
eof_pid=$!
pids+=("$eof_pid")
wait_exit "$eof_pid"
[ "$status" -eq 0 ] && grep -q '^bootstrap=' "$tmp/eof.out"
ok "EOF on stdin stops it after the ready line, exit 0" $? "status $status"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
