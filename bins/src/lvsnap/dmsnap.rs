//! The raw device-mapper backend: a `snapshot` of a dm ORIGIN (one that is not an LVM
//! LV) with exceptions on a COW block device the user names, through our own ioctls.
//!
//! Sequence (LVM's, measured in specs/snapshots.md §4): zero the COW's first chunk (a stale
//! exception-store header would be loaded); create `NAME-real` with the origin's table;
//! create `NAME` with `snapshot <real> <cow> P 8` (inactive); load `snapshot-origin <real>`
//! into the origin's inactive slot; suspend the origin (lockfs = the freeze, or
//! SKIP_LOCKFS when lvsnap froze the filesystem itself); resume `NAME`; resume the origin.
//! A watchdog process started before the suspend resumes the origin if lvsnap dies while
//! it is suspended (a suspended device queues *all* I/O: worse than a freeze).
//! Removal is the reverse and also cleans up any partial state.
//!
//! Growing (`--cow-spare`, EVMS/LVM-style autoextend): the COW is then wrapped in a dm-linear
//! device `NAME-cow` (as LVM's `-cow` layer), and [`extend`] appends a segment of a spare
//! device to its table (reload: suspend and resume `NAME-cow` only, under the watchdog).
//! dm-snapshot's persistent store reads the COW device's size whenever it allocates a chunk
//! (`persistent_prepare_exception`), so the new space is used at once; the status total grows.

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use lampvault::dm::{self, Control, SnapshotStatus, Suspend, Target};

use super::backend::{dm_name_uuid, Status};
use super::state::Record;
use crate::common::Failure;

const CHUNK_SECTORS: u32 = 8;

fn f(e: dm::DmError) -> Failure {
    Failure::failed(e.to_string())
}

fn real_name(name: &str) -> String {
    format!("{name}-real")
}

fn cow_name(name: &str) -> String {
    format!("{name}-cow")
}

/// Size of a block device in 512-byte sectors.
fn sectors_of(dev: &Path) -> Result<u64, Failure> {
    use std::io::{Seek, SeekFrom};
    let mut fh = std::fs::File::open(dev).map_err(|e| Failure::io(dev.display(), &e))?;
    let size = fh
        .seek(SeekFrom::End(0))
        .map_err(|e| Failure::io(dev.display(), &e))?;
    Ok(size / 512)
}

fn origin_name(origin: &str) -> Result<String, Failure> {
    match dm_name_uuid(Path::new(origin)) {
        Some((_, uuid)) if uuid.starts_with("LVM-") => Err(Failure::failed(format!(
            "{origin}: is an LVM logical volume: use --backend lvm so LVM's metadata stays right"
        ))),
        Some((name, _)) => Ok(name),
        None => Err(Failure::failed(format!(
            "{origin}: not a device-mapper device"
        ))),
    }
}

fn zero_first_chunk(cow: &Path) -> Result<u64, Failure> {
    use std::io::{Seek, SeekFrom};
    let mut fh = std::fs::OpenOptions::new()
        .write(true)
        .open(cow)
        .map_err(|e| Failure::io(cow.display(), &e))?;
    let size = fh
        .seek(SeekFrom::End(0))
        .map_err(|e| Failure::io(cow.display(), &e))?;
    if size < 1 << 20 {
        return Err(Failure::failed(format!(
            "{}: COW device too small ({size} bytes, at least 1M)",
            cow.display()
        )));
    }
    fh.seek(SeekFrom::Start(0))
        .map_err(|e| Failure::io(cow.display(), &e))?;
    fh.write_all(&[0u8; 4096])
        .and_then(|_| fh.sync_all())
        .map_err(|e| Failure::io(cow.display(), &e))?;
    Ok(size)
}

/// Create the snapshot. `rec.extra` is the COW device; `skip_lockfs` when the caller froze.
pub fn make_with(
    origin: &Path,
    rec: &Record,
    skip_lockfs: bool,
) -> Result<(Option<String>, Duration), Failure> {
    let origin_s = origin.to_string_lossy().into_owned();
    let oname = origin_name(&origin_s)?;
    let cow = rec
        .extra
        .clone()
        .ok_or_else(|| Failure::usage("dm: --cow DEVICE is required"))?;
    let cow_dev = super::backend::block_devno(Path::new(&cow))
        .ok_or_else(|| Failure::failed(format!("{cow}: not a block device")))?;
    if super::backend::block_devno(origin) == Some(cow_dev) {
        return Err(Failure::usage(format!(
            "{cow}: the COW device cannot be the origin"
        )));
    }
    let ctl = Control::open().map_err(f)?;
    let v = ctl.version().map_err(f)?;
    if v[0] != 4 {
        return Err(Failure::failed(format!(
            "device-mapper interface {}.{}.{} is not supported",
            v[0], v[1], v[2]
        )));
    }
    if ctl.info(&rec.name).map_err(f)?.is_some()
        || ctl.info(&real_name(&rec.name)).map_err(f)?.is_some()
    {
        return Err(Failure::failed(format!(
            "{}: a device-mapper device with this name exists",
            rec.name
        )));
    }
    let (oinfo, otable) = ctl.table(&oname).map_err(f)?;
    if otable
        .iter()
        .any(|t| t.kind == "snapshot-origin" || t.kind == "snapshot-merge")
    {
        return Err(Failure::failed(format!(
            "{origin_s}: already has a snapshot"
        )));
    }
    if oinfo.suspended() {
        return Err(Failure::failed(format!("{origin_s}: is suspended")));
    }
    let sectors: u64 = otable.iter().map(|t| t.length).sum();
    let cow_bytes = zero_first_chunk(Path::new(&cow))?;
    let r = (|| {
        // With spares, the snapshot's COW is a dm-linear NAME-cow over the COW device, so
        // `watch` can append to it later.
        let cow_dev = if rec.spares.is_empty() {
            format!("{}:{}", cow_dev.0, cow_dev.1)
        } else {
            let cname = cow_name(&rec.name);
            ctl.create(&cname, "").map_err(f)?;
            let t = Target::new(
                0,
                cow_bytes / 512,
                "linear",
                format!("{}:{} 0", cow_dev.0, cow_dev.1),
            );
            ctl.load(&cname, &[t], false).map_err(f)?;
            ctl.resume(&cname).map_err(f)?.devno()
        };
        build(&ctl, &oname, &otable, sectors, rec, &cow_dev, skip_lockfs)
    })();
    match r {
        Ok(d) => Ok((Some(cow), d)),
        Err(e) => {
            let _ = remove(rec);
            Err(e)
        }
    }
}

fn build(
    ctl: &Control,
    oname: &str,
    otable: &[Target],
    sectors: u64,
    rec: &Record,
    cow: &str,
    skip_lockfs: bool,
) -> Result<Duration, Failure> {
    let real = real_name(&rec.name);
    ctl.create(&real, "").map_err(f)?;
    ctl.load(&real, otable, false).map_err(f)?;
    let rinfo = ctl.resume(&real).map_err(f)?;
    ctl.create(&rec.name, "").map_err(f)?;
    ctl.load(
        &rec.name,
        &dm::snapshot_table(sectors, &rinfo.devno(), cow, CHUNK_SECTORS),
        false,
    )
    .map_err(f)?;
    ctl.load(oname, &dm::origin_table(sectors, &rinfo.devno()), false)
        .map_err(f)?;
    let mut dog = super::watchdog::Watchdog::start(&[oname.to_string()], &[])?;
    let t0 = Instant::now();
    ctl.suspend(
        oname,
        Suspend {
            skip_lockfs,
            noflush: false,
        },
    )
    .map_err(f)?;
    super::pause("suspended");
    let snap = ctl.resume(&rec.name);
    let orig = ctl.resume(oname);
    let window = t0.elapsed();
    dog.disarm();
    let sinfo = snap.map_err(f)?;
    orig.map_err(f)?;
    dm::ensure_node(&sinfo).map_err(f)?;
    Ok(window)
}

/// Undo everything `make_with` may have done, in reverse; tolerant of partial state.
pub fn remove(rec: &Record) -> Result<(), Failure> {
    let ctl = Control::open().map_err(f)?;
    let real = real_name(&rec.name);
    let oname = dm_name_uuid(Path::new(&rec.origin)).map(|(n, _)| n);
    if let Some(oname) = &oname {
        if let Some(info) = ctl.info(oname).map_err(f)? {
            if info.inactive_table() {
                ctl.clear(oname).map_err(f)?;
            }
            if info.suspended() {
                ctl.resume(oname).map_err(f)?;
            }
            if ctl.info(&real).map_err(f)?.is_some() {
                let (_, ot) = ctl.table(oname).map_err(f)?;
                if ot.iter().any(|t| t.kind == "snapshot-origin") {
                    let (_, rt) = ctl.table(&real).map_err(f)?;
                    ctl.load(oname, &rt, false).map_err(f)?;
                    let s = ctl.suspend(oname, Suspend::default());
                    let r = ctl.resume(oname);
                    s.map_err(f)?;
                    r.map_err(f)?;
                }
            }
        }
    }
    if ctl.info(&rec.name).map_err(f)?.is_some() {
        ctl.remove(&rec.name).map_err(f)?;
    }
    dm::remove_node(&rec.name);
    if ctl.info(&real).map_err(f)?.is_some() {
        ctl.remove(&real).map_err(f)?;
    }
    if ctl.info(&cow_name(&rec.name)).map_err(f)?.is_some() {
        ctl.remove(&cow_name(&rec.name)).map_err(f)?;
    }
    Ok(())
}

/// Grow the COW of a snapshot made with spares by about `bytes` (whole chunks), taking the
/// space from the spares in order. Returns the bytes added.
pub fn extend(rec: &Record, bytes: u64) -> Result<u64, Failure> {
    let ctl = Control::open().map_err(f)?;
    let cname = cow_name(&rec.name);
    if rec.spares.is_empty() || ctl.info(&cname).map_err(f)?.is_none() {
        return Err(Failure::failed(
            "a dm snapshot made without --cow-spare cannot grow its COW device: remove it, or create it with --cow-spare DEVICE",
        ));
    }
    let (_, mut table) = ctl.table(&cname).map_err(f)?;
    let mut end: u64 = table.iter().map(|t| t.length).sum();
    let chunk = CHUNK_SECTORS as u64;
    let mut want = (bytes / 512).div_ceil(chunk) * chunk;
    let mut added = 0;
    for sp in &rec.spares {
        if want == 0 {
            break;
        }
        let p = Path::new(sp);
        let (ma, mi) = super::backend::block_devno(p).ok_or_else(|| {
            Failure::failed(format!("{sp}: spare is not a block device any more"))
        })?;
        let devno = format!("{ma}:{mi}");
        // Segments on a spare are appended in order from its start: its used part is the
        // sum of their lengths.
        let used: u64 = table
            .iter()
            .filter(|t| t.kind == "linear" && t.params.split(' ').next() == Some(devno.as_str()))
            .map(|t| t.length)
            .sum();
        let free = (sectors_of(p)?.saturating_sub(used) / chunk) * chunk;
        let take = free.min(want);
        if take == 0 {
            continue;
        }
        table.push(Target::new(end, take, "linear", format!("{devno} {used}")));
        end += take;
        want -= take;
        added += take;
    }
    if added == 0 {
        return Err(Failure::failed(format!(
            "the spare devices ({}) are used up: the snapshot cannot grow",
            rec.spares.join(", ")
        )));
    }
    ctl.load(&cname, &table, false).map_err(f)?;
    // Snapshot and origin writes wait while NAME-cow is suspended: the watchdog resumes it
    // (with its old table) if lvsnap dies in between.
    let mut dog = super::watchdog::Watchdog::start(std::slice::from_ref(&cname), &[])?;
    let s = ctl.suspend(&cname, Suspend::default());
    let r = ctl.resume(&cname);
    dog.disarm();
    s.map_err(f)?;
    r.map_err(f)?;
    Ok(added * 512)
}

pub fn status(rec: &Record) -> Result<Status, Failure> {
    let ctl = Control::open().map_err(f)?;
    if ctl.info(&rec.name).map_err(f)?.is_none() {
        return Ok(Status {
            state: "missing".into(),
            percent: None,
            size: None,
        });
    }
    let (_, t) = ctl.status(&rec.name).map_err(f)?;
    let line = t.first().map(|t| t.params.clone()).unwrap_or_default();
    let st =
        SnapshotStatus::parse(&line).map_err(|e| Failure::failed(format!("{}: {e}", rec.name)))?;
    let size = match st {
        SnapshotStatus::Active { total, .. } => Some(total * 512),
        _ => None,
    };
    Ok(Status {
        state: st.state().into(),
        percent: Some(st.percent()),
        size,
    })
}

/// Merge the snapshot back into its origin (dm-snapshot's `snapshot-merge`, the way
/// `lvconvert --merge` does it): load `snapshot-merge <real> <cow> P 8` into the origin, suspend
/// the snapshot and the origin, resume the origin (the kernel hands the exception store
/// over from the snapshot), remove the snapshot, wait until every chunk is merged, then put
/// the origin's own table back and remove `-real`. The origin must not be open (mounted):
/// its contents change underneath.
pub fn rollback(rec: &Record) -> Result<(), Failure> {
    let ctl = Control::open().map_err(f)?;
    let oname = origin_name(&rec.origin)?;
    let real = real_name(&rec.name);
    let oinfo = ctl
        .info(&oname)
        .map_err(f)?
        .ok_or_else(|| Failure::failed(format!("{}: origin is gone", rec.origin)))?;
    if oinfo.open_count > 0 {
        return Err(Failure::failed(format!(
            "{}: origin is in use (mounted?): unmount it first",
            rec.origin
        )));
    }
    let st = status(rec)?;
    if st.state != "active" {
        return Err(Failure::failed(format!(
            "{}: snapshot is {}: nothing to merge",
            rec.name, st.state
        )));
    }
    let (_, stable) = ctl.table(&rec.name).map_err(f)?;
    let t = stable
        .first()
        .ok_or_else(|| Failure::failed(format!("{}: snapshot has no table", rec.name)))?;
    let merge = vec![Target::new(0, t.length, "snapshot-merge", t.params.clone())];
    ctl.load(&oname, &merge, false).map_err(f)?;
    ctl.suspend(&rec.name, Suspend::default()).map_err(f)?;
    let s = ctl.suspend(&oname, Suspend::default());
    let r = ctl.resume(&oname);
    s.map_err(f)?;
    r.map_err(f)?;
    ctl.remove(&rec.name).map_err(f)?;
    dm::remove_node(&rec.name);
    let t0 = Instant::now();
    loop {
        let (_, ot) = ctl.status(&oname).map_err(f)?;
        let line = ot.first().map(|t| t.params.clone()).unwrap_or_default();
        match SnapshotStatus::parse(&line).map_err(|e| Failure::failed(format!("{oname}: {e}")))? {
            SnapshotStatus::Active {
                allocated,
                metadata,
                ..
            } if allocated <= metadata => break,
            SnapshotStatus::Active { .. } => {}
            other => {
                return Err(Failure::failed(format!(
                    "{oname}: merge failed: {}",
                    other.state()
                )))
            }
        }
        if t0.elapsed() > Duration::from_secs(3600) {
            return Err(Failure::failed(format!(
                "{oname}: merge still running after an hour; it continues in the kernel"
            )));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let (_, rt) = ctl.table(&real).map_err(f)?;
    ctl.load(&oname, &rt, false).map_err(f)?;
    let s = ctl.suspend(&oname, Suspend::default());
    let r = ctl.resume(&oname);
    s.map_err(f)?;
    r.map_err(f)?;
    ctl.remove(&real).map_err(f)?;
    if ctl.info(&cow_name(&rec.name)).map_err(f)?.is_some() {
        ctl.remove(&cow_name(&rec.name)).map_err(f)?;
    }
    Ok(())
}
