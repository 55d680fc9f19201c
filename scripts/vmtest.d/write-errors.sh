#!/bin/bash
# Guest script for ../vmtest: every lampvault writer on a disk whose free blocks fail
# writes with EIO, as a disk that develops bad sectors: device-mapper's error target over
# exactly the free blocks of a fresh ext4, so its metadata and journal stay good and only
# the new file's data fail. Such errors reach a program only through fsync: a writer that
# exits 0 without having fsynced (or whose fsync lost the error to another open file
# description) has lost data silently.
#   vmtest -b walarchive -b mediahdr -b raitstripe -b binlogcut -f SEG1 -f SEG2 -f BINLOG \
#       -d 128M scripts/vmtest.d/write-errors.sh NAME1 NAME2 BINLOG-NAME
# (SEG1, SEG2: two WAL segments of one cluster; BINLOG: a binlog; all in /vmtest by name)
# Prints "ok: ..." / "FAIL: ..." lines; exit 0 only if all pass.
set -u
fail=0
ok()   { echo "ok: $*"; }
bad()  { echo "FAIL: $*"; fail=1; }
check() { local what=$1; shift; if "$@"; then ok "$what"; else bad "$what"; fi; }
step() { echo "== [$(cut -d' ' -f1 /proc/uptime)s] $*"; }
first=$1 next=$2 binlog=$3
set -- $VMTEST_DISKS
d1=$1
n=$(blockdev --getsz "$d1")
mkdir -p /mnt/w

# failing_fs CMD...: a fresh ext4 at /mnt/w; CMD runs while it is good; then every block
# that is still free fails with EIO.
failing_fs() {
    umount /mnt/w 2>/dev/null; dmsetup remove wd 2>/dev/null
    dmsetup create wd --table "0 $n linear $d1 0" || exit 10
    mkfs.ext4 -q -F -b 4096 -E nodiscard /dev/mapper/wd || exit 11
    mount /dev/mapper/wd /mnt/w || exit 12
    "$@" || exit 13
    umount /mnt/w || exit 14
    dumpe2fs /dev/mapper/wd 2>/dev/null | sed -n 's/^  Free blocks: //p' | tr ',' '\n' | tr -d ' ' | grep . |
        awk -F- -v n="$n" -v dev="$d1" '
        BEGIN { pos = 0 }
        { a = $1 * 8; b = (($2 == "" ? $1 : $2) + 1) * 8
          if (a > pos) print pos, a - pos, "linear", dev, pos
          print a, b - a, "error"; pos = b }
        END { if (pos < n) print pos, n - pos, "linear", dev, pos }' > /tmp/table
    dmsetup reload wd /tmp/table && dmsetup suspend wd && dmsetup resume wd || exit 15
    mount /dev/mapper/wd /mnt/w || exit 16
}
# expect WHAT RC: the last command's status was RC, its stderr (/tmp/err) names an I/O error
expect() {
    local what=$1 want=$2 rc=$3
    sed "s/^/  $what: /" /tmp/err
    check "$what exits $want" test "$rc" = "$want"
    check "$what names the I/O error" grep -q "I/O error" /tmp/err
}
nothing_at() { ! ls "$@" 2>/dev/null | grep -q .; }

step "walarchive push (lz4 and uncompressed) and fetch"
mkdir /tmp/arch && walarchive push "/vmtest/$next" "$next" --archive /tmp/arch || exit 20
wa_prep() { mkdir /mnt/w/arch /mnt/w/pg_wal && walarchive push "/vmtest/$first" "$first" --archive /mnt/w/arch; }
failing_fs wa_prep
for mode in lz4 none; do
    walarchive push "/vmtest/$next" "$next" --archive /mnt/w/arch --compress $mode 2>/tmp/err
    expect "walarchive push --compress $mode" 1 $?
    check "walarchive push --compress $mode left no final name" nothing_at "/mnt/w/arch/*/$next*"
done
# restore_command: never "absent" (1), always "stop recovery" (255)
walarchive fetch "$next" /mnt/w/pg_wal/RECOVERYXLOG --archive /tmp/arch 2>/tmp/err
expect "walarchive fetch" 255 $?
check "walarchive fetch left no %p" test ! -e /mnt/w/pg_wal/RECOVERYXLOG

step "mediahdr write and payload -o onto failing blocks"
head -c 5000000 /dev/urandom > /tmp/in
mediahdr write --host h --disk /d --level 0 -o /tmp/good.media < /tmp/in || exit 21
failing_fs true
mediahdr write --host h --disk /d --level 0 -o /mnt/w/m.media < /tmp/in 2>/tmp/err
expect "mediahdr write" 1 $?
check "mediahdr write left no media file" test ! -e /mnt/w/m.media
mediahdr payload -o /mnt/w/payload /tmp/good.media 2>/tmp/err
expect "mediahdr payload" 1 $?
check "mediahdr payload left no file" test ! -e /mnt/w/payload

step "raitstripe split and rebuild with a volume on failing blocks"
raitstripe split /tmp/a /tmp/b /tmp/c < /tmp/in || exit 22
failing_fs true
raitstripe split /tmp/v0 /mnt/w/v1 /tmp/v2 < /tmp/in 2>/tmp/err
expect "raitstripe split" 1 $?
raitstripe join /tmp/v0 /mnt/w/v1 /tmp/v2 > /tmp/out 2>/tmp/err; rc=$?
check "join refuses the set whose split failed" bash -c "test $rc = 1 && ! test -s /tmp/out && grep -q 'did not finish' /tmp/err"
raitstripe rebuild --into 1=/mnt/w/b2 /tmp/a missing /tmp/c 2>/tmp/err
expect "raitstripe rebuild" 1 $?
check "raitstripe rebuild left no partial volume" test ! -e /mnt/w/b2

step "binlogcut -o onto failing blocks"
failing_fs true
binlogcut -o /mnt/w/cut.bin "/vmtest/$binlog" 2>/tmp/err
expect "binlogcut -o" 1 $?
check "binlogcut left no partial cut" test ! -e /mnt/w/cut.bin

umount /mnt/w; dmsetup remove wd
[ $fail = 0 ] && echo "write errors vm: all checks passed"
exit $fail
