#!/bin/bash
# Guest script for ../vmtest, run with --hostroot (the host's mariadb-server): MariaDB end to
# end on the lvm backend with the lock only around LVM's suspend (--hold-mode suspend).
#   vmtest -H -m 2048 -d 2G vmtest.d/lvsnap-mariadb.sh LVSNAP MARIADB_SANDBOX HOLD_MYSQL
# An insert loop writes the same id into an InnoDB and a MyISAM table; `lvsnap create
# --hold hold-mysql` snapshots the XFS LV under it; a second server started on the
# snapshot must find MyISAM not crashed (CHECK TABLE OK, nothing "crashed" in its log) and
# both tables contiguous and equal (the loop is between its two inserts at most once).
# Prints "ok: ..." / "FAIL: ..." lines and "MARIADB ..." numbers; exit 0 only if all pass.
set -u
LV=${1:?lvsnap binary} SB=${2:?mariadb-sandbox} HOLD=${3:?hold-mysql}
fail=0
ok() { echo "ok: $*"; }; bad() { echo "FAIL: $*"; fail=1; }
disk=${VMTEST_DISKS%% *}
export LVSNAP_STATE_DIR=/tmp/lvsnap-state
pvcreate -q "$disk" && vgcreate -q vg0 "$disk" && lvcreate -q -y -L 700M -n mysql vg0 >/dev/null || exit 10
mkfs.xfs -q -f /dev/vg0/mysql && mkdir -p /mnt/db /mnt/snap && mount /dev/vg0/mysql /mnt/db || exit 11
eval "$("$SB" start --dir /mnt/db/inst --no-binlog)" || exit 12
Q() { mariadb --no-defaults -u root -S "$MARIADB_SOCKET" -N -e "$1"; }
Q "CREATE DATABASE t; CREATE TABLE t.i (id INT PRIMARY KEY) ENGINE=InnoDB; CREATE TABLE t.m (id INT PRIMARY KEY) ENGINE=MyISAM;" || exit 13
( for n in $(seq 1 300000); do echo "INSERT INTO t.i VALUES ($n); INSERT INTO t.m VALUES ($n);"; done \
    | mariadb --no-defaults -u root -S "$MARIADB_SOCKET" >/tmp/loop.log 2>&1 ) &
loop=$!
sleep 3
j=$("$LV" create /dev/vg0/mysql --name snap --size 128M --hold "$HOLD --no-defaults -u root -S $MARIADB_SOCKET" --json); rc=$?
echo "MARIADB $j"
[ $rc = 0 ] && ok "lvsnap create --hold hold-mysql" || bad "lvsnap create: $rc"
echo "$j" | grep -q '"lock_held_ms":[0-9]' && ok "lock-held time reported" || bad "no lock_held_ms"
kill $loop 2>/dev/null && ok "insert loop still running" || { bad "insert loop ended early"; cat /tmp/loop.log; }
after=$(Q "SELECT COUNT(*) FROM t.i")
# The snapshot is a writable LVM snapshot: mount it read-write (as mylvmbackup does) and
# start a second server on it.
mount -o nouuid /dev/vg0/snap /mnt/snap || bad "mount snapshot"
rm -f /mnt/snap/inst/mysqld.sock /mnt/snap/inst/mysqld.pid
mkdir -p /tmp/snaptmp
mariadbd --no-defaults --datadir=/mnt/snap/inst/data --socket=/tmp/snap.sock --skip-networking --skip-log-bin \
  --user=root --pid-file=/tmp/snap.pid --log-error=/tmp/snap.err --tmpdir=/tmp/snaptmp --innodb-buffer-pool-size=64M </dev/null >/dev/null 2>&1 &
srv=$!
for _ in $(seq 1 120); do mariadb --no-defaults -u root -S /tmp/snap.sock -e 'select 1' >/dev/null 2>&1 && break; sleep 0.5; done
S() { mariadb --no-defaults -u root -S /tmp/snap.sock -N -B -e "$1"; }
chk=$(S "CHECK TABLE t.m" | cut -f3,4)
ci=$(S "SELECT COUNT(*), COALESCE(MAX(id),0) FROM t.i"); cm=$(S "SELECT COUNT(*), COALESCE(MAX(id),0) FROM t.m")
echo "MARIADB snapshot: InnoDB count,max = $ci; MyISAM count,max = $cm; origin InnoDB rows after the run: $after"
[ "$chk" = "$(printf 'status\tOK')" ] && ok "MyISAM CHECK TABLE OK on the snapshot" || bad "CHECK TABLE: $chk"
grep -qi crashed /tmp/snap.err && bad "server log mentions crashed tables" || ok "nothing marked crashed"
read -r ni mi <<< "$ci"; read -r nm mm <<< "$cm"
[ "$ni" -gt 0 ] && [ "$ni" = "$mi" ] && [ "$nm" = "$mm" ] && ok "both tables contiguous ($ni, $nm rows)" || bad "not contiguous: $ci / $cm"
[ "$ni" = "$nm" ] || [ "$ni" = $((nm + 1)) ] && ok "InnoDB and MyISAM agree (the lock came between whole statements)" || bad "tables disagree: $ni vs $nm"
[ "$after" -gt "$ni" ] && ok "writes went on after the snapshot" || bad "no writes after the snapshot"
mariadb-admin --no-defaults -u root -S /tmp/snap.sock shutdown >/dev/null 2>&1; wait $srv
umount /mnt/snap
"$LV" remove snap || bad "lvsnap remove"
"$SB" stop "$MARIADB_SANDBOX" >/dev/null 2>&1 || true
umount /mnt/db
echo "lvsnap mariadb vm: $([ $fail = 0 ] && echo all checks passed || echo SOME CHECKS FAILED)"
exit $fail
