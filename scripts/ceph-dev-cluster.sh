#!/usr/bin/env bash
# A throw-away single-node Ceph cluster on loopback, for the Ceph
# libservice's tests and benchmarks:
#
#   scripts/ceph-dev-cluster.sh install   Debian packages (root; once)
#   scripts/ceph-dev-cluster.sh start     1 mon, 1 mgr, 1 OSD on memstore (RAM,
#                                         no disks), 1 MDS, cephx on, CephFS
#                                         'cephfs' with pools of size 1
#   scripts/ceph-dev-cluster.sh status    exit 0 when it answers, with an active MDS
#   scripts/ceph-dev-cluster.sh stop      stops every daemon (and a ceph-fuse
#                                         mounted by the benchmark), wipes the data
#   scripts/ceph-dev-cluster.sh env       prints `export CEPH_CONF=...`
#
# Everything lives in $POLYTROPON_CEPH_DIR (default /tmp/polytropon-ceph, mode
# 0700): ceph.conf, the client.admin keyring, data, logs, pid files. The
# monitor listens on 127.0.0.1:$POLYTROPON_CEPH_PORT (msgr2, default 40310)
# and the next port (msgr1). `start` is a no-op when the cluster is up.
# Clients: CEPH_CONF=$POLYTROPON_CEPH_DIR/ceph.conf, client id 'admin'.
set -euo pipefail

DIR=${POLYTROPON_CEPH_DIR:-/tmp/polytropon-ceph}
PORT=${POLYTROPON_CEPH_PORT:-40310}
FS=cephfs
CONF=$DIR/ceph.conf
export CEPH_CONF=$CONF

say() { printf '[ceph-dev-cluster] %s\n' "$*" >&2; }
ceph_() { timeout 30 ceph --connect-timeout 10 "$@"; }

# Polls `$@` every half second for up to $1 seconds.
until_ok() {
  local secs=$1; shift
  local end=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < end)) || return 1
    sleep 0.5
  done
}

mds_active() { ceph_ mds stat 2>/dev/null | grep -q "^$FS:1 {0=[^}]*=up:active}"; }
mon_running() { [[ -f $DIR/run/mon.a.pid ]] && kill -0 "$(cat "$DIR/run/mon.a.pid")" 2>/dev/null; }

# Every PG active+clean and the MDS active: the filesystem takes writes.
healthy() {
  mds_active || return 1
  ceph_ pg stat -f json | python3 -c '
import json, sys
d = json.load(sys.stdin)
d = d.get("pg_summary", d)
states = {s["name"]: s["num"] for s in d["num_pg_by_state"]}
sys.exit(0 if d["num_pgs"] > 0 and states.get("active+clean", 0) == d["num_pgs"] else 1)'
}

install() {
  local missing=()
  for bin in ceph-mon ceph-mgr ceph-osd ceph-mds ceph-fuse uuidgen; do command -v "$bin" >/dev/null || missing+=("$bin"); done
  [[ -e /usr/include/cephfs/libcephfs.h ]] || missing+=(libcephfs-dev)
  ((${#missing[@]} == 0)) && return 0
  if [[ $(id -u) != 0 ]] || ! command -v apt-get >/dev/null; then
    say "missing: ${missing[*]}; install as root: apt-get install -y ceph ceph-mds libcephfs-dev ceph-fuse uuid-runtime"
    return 1
  fi
  say "installing Ceph from Debian (missing: ${missing[*]})"
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    ceph-mon ceph-mgr ceph-osd ceph-mds ceph-fuse ceph-common libcephfs2 libcephfs-dev uuid-runtime python3 >/dev/null
}

# Signals every daemon whose pid file matches, waits up to 15 s, then kills.
stop_daemons() {
  local sig=$1 pids=() pid f; shift
  for f in "$@"; do
    [[ -f $f ]] || continue
    pid=$(cat "$f"); rm -f "$f"
    grep -qs '^ceph-' "/proc/$pid/comm" || continue
    [[ $sig == none ]] || kill "-$sig" "$pid" 2>/dev/null || true
    pids+=("$pid")
  done
  for _ in $(seq 150); do
    local alive=0
    for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    ((alive)) || return 0
    sleep 0.1
  done
  for pid in "${pids[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
}

# The directory is this script's only when it holds the marker `start` writes:
# anything else named by POLYTROPON_CEPH_DIR is never stopped or removed.
MARKER=.polytropon-ceph-dev-cluster
ours() { [[ -f $DIR/$MARKER ]]; }

stop() {
  [[ -d $DIR ]] || return 0
  if ! ours; then
    say "$DIR was not made by this script (no $MARKER): left alone"
    return 1
  fi
  # ceph-fuse first, while the MDS can still answer its unmount.
  local m
  for m in $(awk '$3 == "fuse.ceph-fuse" {print $2}' /proc/mounts); do
    [[ -f $DIR/run/ceph-fuse.mount && $m == "$(cat "$DIR/run/ceph-fuse.mount")" ]] || continue
    fusermount -u "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
  done
  stop_daemons none "$DIR"/run/ceph-fuse*.pid
  # The MDS of 16.2 may hang after SIGTERM; its state is in RADOS anyway.
  stop_daemons KILL "$DIR"/run/mds.*.pid
  # The data is on memstore, thrown away: no need for a clean shutdown.
  stop_daemons KILL "$DIR"/run/osd.*.pid "$DIR"/run/mgr.*.pid
  stop_daemons KILL "$DIR"/run/mon.*.pid
  rm -rf "$DIR"
  say "stopped"
}

write_conf() {
  local fsid=$1
  cat >"$CONF" <<EOF
[global]
fsid = $fsid
mon host = [v2:127.0.0.1:$PORT,v1:127.0.0.1:$((PORT + 1))]
auth cluster required = cephx
auth service required = cephx
auth client required = cephx
auth allow insecure global id reclaim = false
keyring = $DIR/keyring
run dir = $DIR/run
admin socket = $DIR/run/\$name.\$pid.asok
log file = $DIR/log/\$name.log
ms bind ipv4 = true
ms bind ipv6 = false
public addr = 127.0.0.1
cluster addr = 127.0.0.1
osd pool default size = 1
osd pool default min size = 1
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon allow pool size one = true
mon allow pool delete = true
mon warn on pool no redundancy = false
mon data avail warn = 2
mon data avail crit = 1
paxos propose interval = 0.1
mgr stats period = 1
mgr tick period = 1

[mon]
mon data = $DIR/data/\$name
pid file = $DIR/run/\$name.pid
mon cluster log file = $DIR/log/cluster.log

[mgr]
mgr data = $DIR/data/\$name
keyring = $DIR/data/\$name/keyring
pid file = $DIR/run/\$name.pid

[osd]
osd data = $DIR/data/\$name
keyring = $DIR/data/\$name/keyring
pid file = $DIR/run/\$name.pid
osd objectstore = memstore
memstore device bytes = ${POLYTROPON_CEPH_MEMSTORE_BYTES:-2147483648}

[mds]
mds data = $DIR/data/\$name
keyring = $DIR/data/\$name/keyring
pid file = $DIR/run/\$name.pid
EOF
}

start() {
  if [[ -f $CONF ]] && mon_running && mds_active; then
    say "already running ($CONF)"
    return 0
  fi
  for bin in ceph-mon ceph-mgr ceph-osd ceph-mds uuidgen python3; do
    command -v "$bin" >/dev/null || { say "$bin is not installed: run '$0 install' as root"; return 1; }
  done
  if [[ -d $DIR ]] && ! ours && [[ -n $(ls -A "$DIR") ]]; then
    say "$DIR exists and was not made by this script: choose another POLYTROPON_CEPH_DIR"
    return 1
  fi
  stop || return 1
  local t0=$SECONDS
  mkdir -p "$DIR"
  # Private: the client.admin key lives here.
  chmod 0700 "$DIR"
  [[ -O $DIR ]] || { say "$DIR belongs to another user"; return 1; }
  touch "$DIR/$MARKER"
  mkdir -p "$DIR"/{run,log,data}
  local fsid; fsid=$(uuidgen)
  write_conf "$fsid"

  # Monitor, with the mon. and client.admin keys in one keyring.
  ceph-authtool --create-keyring "$DIR/keyring" --gen-key -n mon. --cap mon 'allow *' >/dev/null
  ceph-authtool "$DIR/keyring" --gen-key -n client.admin \
    --cap mon 'allow *' --cap osd 'allow *' --cap mds 'allow *' --cap mgr 'allow *' >/dev/null
  chmod 0600 "$DIR/keyring"
  monmaptool --create --clobber --fsid "$fsid" --addv a "[v2:127.0.0.1:$PORT,v1:127.0.0.1:$((PORT + 1))]" "$DIR/monmap" >/dev/null
  ceph-mon --mkfs -i a --monmap "$DIR/monmap" --keyring "$DIR/keyring"
  ceph-mon -i a
  until_ok 60 ceph_ quorum_status || { say "the monitor did not form a quorum (see $DIR/log)"; return 1; }

  # Manager: PG states come from it.
  mkdir -p "$DIR/data/mgr.x"
  ceph_ auth get-or-create mgr.x mon 'allow profile mgr' osd 'allow *' mds 'allow *' -o "$DIR/data/mgr.x/keyring"
  ceph-mgr -i x

  # One OSD on memstore.
  local uuid key id
  uuid=$(uuidgen)
  key=$(ceph-authtool --gen-print-key)
  id=$(printf '{"cephx_secret": "%s"}' "$key" | ceph_ osd new "$uuid" -i -)
  mkdir -p "$DIR/data/osd.$id"
  ceph-authtool --create-keyring "$DIR/data/osd.$id/keyring" --name "osd.$id" --add-key "$key" >/dev/null
  ceph-osd -i "$id" --mkfs --osd-uuid "$uuid" >"$DIR/log/osd-mkfs.log" 2>&1
  ceph-osd -i "$id" 2>>"$DIR/log/osd-start.log"

  # CephFS and its metadata server.
  ceph_ osd pool create "${FS}_metadata" 8 8 replicated >/dev/null 2>&1
  ceph_ osd pool create "${FS}_data" 8 8 replicated >/dev/null 2>&1
  ceph_ fs new "$FS" "${FS}_metadata" "${FS}_data" >/dev/null 2>&1
  ceph_ fs set "$FS" standby_count_wanted 0
  mkdir -p "$DIR/data/mds.a"
  ceph_ auth get-or-create mds.a mon 'allow profile mds' osd 'allow rw tag cephfs *=*' mds 'allow' mgr 'allow profile mds' \
    -o "$DIR/data/mds.a/keyring"
  ceph-mds -i a >/dev/null

  until_ok 180 healthy || { say "the cluster did not become healthy (see $DIR/log)"; ceph_ -s >&2 || true; return 1; }
  say "up in $((SECONDS - t0)) s: export CEPH_CONF=$CONF"
}

case ${1:-} in
  install) install ;;
  start) start ;;
  stop) stop ;;
  status) [[ -f $CONF ]] && mon_running && mds_active && { say "running ($CONF)"; exit 0; }; say "not running"; exit 1 ;;
  env) echo "export CEPH_CONF=$CONF" ;;
  *) echo "usage: $0 install|start|stop|status|env" >&2; exit 2 ;;
esac
