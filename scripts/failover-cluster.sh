#!/usr/bin/env bash
# A three-member Patroni cluster on 127.0.0.1 for the failover test: etcd as
# the DCS, three Patroni-managed PostgreSQL members in synchronous mode
# (both standbys synchronous, each commit applied on them before it is
# acknowledged), and HAProxy with two listeners: writes to whichever member
# Patroni's REST API calls the primary, reads to the synchronous standbys.
# Everything lives under .state/failover and is rebuilt by `start`.
#
#   scripts/failover-cluster.sh start            fresh cluster; prints the admin URL
#   scripts/failover-cluster.sh stop             stop everything it started
#   scripts/failover-cluster.sh start-member N   (re)start member N's Patroni
#   scripts/failover-cluster.sh apply-delay N D  hold member N's replay back by D (0 ends it)
#
# Ports: etcd 23790/23800, PostgreSQL 55441-55443, Patroni REST 58441-58443,
# HAProxy 55440 (writes) and 55439 (reads).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
state=$root/.state/failover
haproxy_port=55440
read_port=55439
password_file=$state/password

"$root/scripts/install-deps.sh" postgresql patroni etcd-server haproxy
bindir=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)

as_postgres() {
    if [[ $(id -u) -eq 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}

member_config() {
    local n=$1 password
    password=$(cat "$password_file")
    cat <<YAML
scope: spindrive-failover
namespace: /spindrive/
name: member$n
restapi:
  listen: 127.0.0.1:5844$n
  connect_address: 127.0.0.1:5844$n
etcd3:
  hosts: 127.0.0.1:23790
bootstrap:
  dcs:
    # The leader key's TTL is most of the failover time: keep it short,
    # with loop_wait + 2 * retry_timeout not above it, as Patroni requires.
    ttl: 5
    loop_wait: 1
    retry_timeout: 2
    maximum_lag_on_failover: 1048576
    synchronous_mode: true
    # Both standbys are synchronous and apply a commit before the client
    # hears of it, so a read from either shows every acknowledged write
    # (the read listener below). Patroni drops a standby that stops
    # streaming from the set; commits wait for it until then. Strict: a
    # new leader acknowledges nothing before a standby has applied it, so
    # the standby left behind at a failover is never stale while the read
    # listener still routes to it.
    synchronous_node_count: 2
    synchronous_mode_strict: true
    postgresql:
      use_pg_rewind: true
      # Without slots a standby follows a new leader at once, instead of
      # waiting a Patroni loop for its slot there (with strict synchronous
      # mode, the new leader's writes wait for that); wal_keep_size keeps
      # the WAL a rejoining member needs.
      use_slots: false
      parameters:
        wal_level: replica
        hot_standby: "on"
        wal_log_hints: "on"
        max_wal_senders: 10
        max_replication_slots: 10
        wal_retrieve_retry_interval: 250ms
        wal_keep_size: 1GB
        fsync: "off"
        synchronous_commit: remote_apply
        # Replay (and with it every commit) never waits long for a read on
        # a standby: the leader keeps the rows standbys still read, and a
        # conflicting read is cancelled after a second (and retried).
        hot_standby_feedback: "on"
        max_standby_streaming_delay: 1s
        # A standby cut off is dropped from the set after 5 s, not 60.
        wal_sender_timeout: 5s
        # Deleted content's space is reused once vacuumed (migration 0010).
        autovacuum_naptime: 10s
  initdb:
    - encoding: UTF8
    - locale: C.UTF-8
postgresql:
  # Written by Patroni at every start, so a member rebuilt by pg_rewind or
  # a base backup never comes up without it.
  pg_hba:
    - local all all trust
    - host replication replicator 127.0.0.1/32 scram-sha-256
    - host all all 127.0.0.1/32 scram-sha-256
  listen: 127.0.0.1:5544$n
  connect_address: 127.0.0.1:5544$n
  data_dir: $state/member$n/data
  bin_dir: $bindir
  pgpass: $state/member$n/pgpass
  authentication:
    superuser:
      username: postgres
      password: $password
    replication:
      username: replicator
      password: $password
    rewind:
      username: postgres
      password: $password
  parameters:
    unix_socket_directories: $state/member$n
  # A standby's replay held back on purpose (apply-delay below).
  recovery_conf:
    recovery_min_apply_delay: ${APPLY_DELAY:-0}
YAML
}

start_member() {
    local n=$1
    member_config "$n" > "$state/member$n.yml"
    chown postgres "$state/member$n.yml"
    as_postgres patroni "$state/member$n.yml" >> "$state/member$n.log" 2>&1 &
}

# Holds back member N's replay by DELAY (e.g. 2s; 0 ends it), as a
# lagging standby would, through Patroni's own configuration: Patroni
# removes recovery settings made behind its back.
apply_delay() {
    local n=$1 delay=$2 member_url
    APPLY_DELAY=$delay member_config "$n" > "$state/member$n.yml"
    curl -sf -X POST "http://127.0.0.1:5844$n/reload" >/dev/null
    member_url="postgres://postgres:$(cat "$password_file")@127.0.0.1:5544$n/postgres"
    wait_for "member $n replaying with a delay of $delay" 20 delay_is "$member_url" "$delay"
}

delay_is() {
    [[ $(psql -X -q -At "$1" -c "SELECT current_setting('recovery_min_apply_delay')") == "$2" ]]
}

wait_for() {
    local what=$1 seconds=$2
    shift 2
    for _ in $(seq "$((seconds * 10))"); do
        if "$@" >/dev/null 2>&1; then return 0; fi
        sleep 0.1
    done
    echo "error: $what did not happen within ${seconds}s; logs are in $state" >&2
    exit 1
}

# Patroni's /replica answers 200 for a running, caught-up replica.
member_streams() {
    curl -sf "http://127.0.0.1:5844$1/replica" >/dev/null
}

# Every process of the cluster names a path under $state on its command
# line (Patroni its config, PostgreSQL its data directory, etcd and HAProxy
# theirs): a throwaway test cluster is stopped by killing them all.
# Whether ten connections in a row to $1 reach a member whose
# pg_is_in_recovery() is $2 (f: the primary, t: a standby).
all_in_recovery() {
    for _ in $(seq 10); do
        [[ $(psql -X -q -At "$1" -c "SELECT pg_is_in_recovery()") == "$2" ]] || return 1
    done
}

stop() {
    pkill -KILL -f "$state/" 2>/dev/null || true
    for _ in $(seq 50); do
        pgrep -f "$state/" >/dev/null || return 0
        sleep 0.1
    done
    echo "error: processes under $state survived SIGKILL" >&2
    return 1
}

start() {
    stop
    rm -rf "$state"
    mkdir -p "$state"
    chmod 755 "$state"
    head -c 18 /dev/urandom | base64 | tr -d '/+=' > "$password_file"
    for n in 1 2 3; do
        mkdir -p "$state/member$n"
        chmod 700 "$state/member$n"
    done
    chown -R postgres "$state"
    chown root "$state" "$password_file"
    chmod 644 "$password_file"

    etcd --name failover --data-dir "$state/etcd" \
        --listen-client-urls http://127.0.0.1:23790 --advertise-client-urls http://127.0.0.1:23790 \
        --listen-peer-urls http://127.0.0.1:23800 --initial-advertise-peer-urls http://127.0.0.1:23800 \
        --initial-cluster failover=http://127.0.0.1:23800 > "$state/etcd.log" 2>&1 &
    wait_for "etcd" 20 curl -sf http://127.0.0.1:23790/health

    for n in 1 2 3; do start_member "$n"; done
    wait_for "a leader" 60 bash -c 'for n in 1 2 3; do curl -sf http://127.0.0.1:5844$n/primary && exit 0; done; exit 1'
    for n in 1 2 3; do
        curl -sf "http://127.0.0.1:5844$n/primary" >/dev/null 2>&1 && continue
        wait_for "member $n streaming" 60 member_streams "$n"
    done

    cat > "$state/haproxy.cfg" <<CFG
global
    maxconn 2000
defaults
    mode tcp
    timeout connect 2s
    timeout client 30m
    timeout server 30m
    timeout check 1s
listen primary
    bind 127.0.0.1:$haproxy_port
    option httpchk GET /primary
    http-check expect status 200
    default-server inter 500ms fall 2 rise 1 on-marked-down shutdown-sessions
    server member1 127.0.0.1:55441 check port 58441
    server member2 127.0.0.1:55442 check port 58442
    server member3 127.0.0.1:55443 check port 58443
listen replicas
    bind 127.0.0.1:$read_port
    # Patroni's /sync answers 200 on a running synchronous standby. A
    # member that leaves the set loses its sessions within half a second;
    # one that joins serves after 1.5 s of answering. With no standby in
    # the set, connections are closed at once and the app reads from the
    # primary through its own address (so the primary never carries a
    # second pool per client).
    option httpchk GET /sync
    http-check expect status 200
    balance leastconn
    retries 2
    option redispatch
    default-server inter 250ms fall 2 rise 6 on-marked-down shutdown-sessions
    server member1 127.0.0.1:55441 check port 58441
    server member2 127.0.0.1:55442 check port 58442
    server member3 127.0.0.1:55443 check port 58443
CFG
    haproxy -db -f "$state/haproxy.cfg" > "$state/haproxy.log" 2>&1 &
    local url
    url="postgres://postgres:$(cat "$password_file")@127.0.0.1:$haproxy_port/postgres"
    # HAProxy counts every member up until its checks say otherwise: wait
    # until ten connections in a row reach the writable primary.
    wait_for "HAProxy to route only to the primary" 20 all_in_recovery "$url" f
    for n in 1 2 3; do
        curl -sf "http://127.0.0.1:5844$n/primary" >/dev/null 2>&1 && continue
        wait_for "member $n synchronous" 60 curl -sf "http://127.0.0.1:5844$n/sync"
    done
    wait_for "HAProxy to read only from standbys" 20 all_in_recovery "${url/:$haproxy_port\//:$read_port/}" t
    echo "$url"
}

case ${1:-} in
    start) start ;;
    stop) stop ;;
    start-member) start_member "${2:?member number}" ;;
    apply-delay) apply_delay "${2:?member number}" "${3:?delay, e.g. 2s}" ;;
    *) echo "usage: $0 start|stop|start-member N|apply-delay N DELAY" >&2; exit 2 ;;
esac
