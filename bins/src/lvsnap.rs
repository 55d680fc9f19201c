//! lvsnap — the consistent-snapshot procedure in one command: quiesce (`--hold`), snapshot
//! (LVM, raw device-mapper, btrfs or reflink), release, mount, run, remove; reporting how
//! long writes were blocked, and never leaving a lock, a suspend or an unlisted snapshot.
//!
//! Invariants: every step taken is undone in reverse on failure or on SIGINT/SIGTERM/SIGHUP
//! (the lock and a suspend first, since they block writers), after which lvsnap dies by the
//! same signal; on SIGKILL the hold co-process sees EOF on stdin (lock released), the
//! watchdog resumes a suspended dm origin, and the state record makes any leftover
//! snapshot visible to `list` and removable by `remove`. SIGPIPE is ignored.
//! Spec: `specs/snapshots.md`; issue 8.

mod backend;
mod dmsnap;
mod hold;
mod lvmtrace;
mod ops;
mod state;
mod watchdog;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::{value_parser, Arg, ArgAction, ArgMatches, Command};
use lampvault::sys::termsig::{self, TermSignals};
use nix::sys::signal::Signal;

use crate::common::{Failure, Sigpipe, Tool};
use backend::{Kind, Size};
use state::Record;

/// Exit code: the snapshot is invalid (COW overflowed) or overflowed.
pub const EXIT_INVALID: u8 = 3;
/// Exit code: `exec`'s COMMAND failed (the snapshot was still removed).
pub const EXIT_COMMAND: u8 = 4;

fn create_args(cmd: Command) -> Command {
    cmd.arg(Arg::new("origin").value_name("ORIGIN").required(true).value_parser(value_parser!(PathBuf)).help("LVM logical volume, device-mapper device, btrfs subvolume or directory to snapshot"))
        .arg(Arg::new("name").long("name").short('n').value_name("NAME").required(true).help("Snapshot name (1-64 of A-Z a-z 0-9 . _ + -)"))
        .arg(Arg::new("backend").long("backend").value_name("BACKEND").default_value("auto").value_parser(["auto", "lvm", "dm", "btrfs", "reflink"]).help("How to snapshot (auto: from what ORIGIN is)"))
        .arg(Arg::new("size").long("size").short('L').value_name("SIZE").value_parser(backend::parse_size).help("COW size for lvm: bytes (50M, 1G) or percent of the origin (15%)"))
        .arg(Arg::new("cow").long("cow").value_name("DEVICE").value_parser(value_parser!(PathBuf)).help("dm: block device that holds the snapshot's exceptions (its first 4 KiB are zeroed)"))
        .arg(Arg::new("cow_spare").long("cow-spare").value_name("DEVICE").action(ArgAction::Append).value_parser(value_parser!(PathBuf)).help("dm: spare block device (repeatable) that watch may append to the COW when it fills (the COW is then wrapped in a dm-linear NAME-cow device)"))
        .arg(Arg::new("dest").long("dest").value_name("DIR").value_parser(value_parser!(PathBuf)).help("btrfs, reflink: directory that receives the snapshot NAME (default: ORIGIN's parent; same filesystem)"))
        .arg(Arg::new("freeze").long("freeze").value_name("MOUNTPOINT").value_parser(value_parser!(PathBuf)).help("lvm, dm: the filesystem on ORIGIN mounted here is frozen for the snapshot by device-mapper's suspend (lockfs); refused for btrfs and reflink, whose snapshots hang on a frozen filesystem"))
        .arg(Arg::new("hold").long("hold").value_name("COMMAND").help("Quiesce co-process (sh -c): lvsnap waits for a line READY on its stdout, snapshots, then closes its stdin; its exit status is checked"))
        .arg(Arg::new("hold_mode").long("hold-mode").value_name("MODE").default_value("auto").value_parser(["auto", "suspend", "whole"]).help("lvm: hold the lock only around LVM's suspend of the origin (suspend: lvcreate runs traced), or around the whole lvcreate (whole); auto: suspend, or whole with a warning when tracing is not permitted"))
        .arg(Arg::new("hold_timeout").long("hold-timeout").value_name("SECONDS").default_value("60").value_parser(value_parser!(u64).range(1..=86400)).help("Give up when the hold command has not printed READY within this time"))
        .arg(Arg::new("mount").long("mount").value_name("DIR").value_parser(value_parser!(PathBuf)).help("Mount the snapshot read-only at DIR (XFS: nouuid; btrfs/reflink: a read-only bind mount)"))
        .arg(Arg::new("json").long("json").action(ArgAction::SetTrue).help("Print a JSON report (names, lock-held and frozen times in ms) on stdout"))
        .arg(Arg::new("verbose").long("verbose").short('v').action(ArgAction::SetTrue).help("Print a one-line summary with the times on stderr"))
}

pub fn command() -> Command {
    Command::new("lvsnap")
        .about("Consistent snapshots on LVM, device-mapper, btrfs and reflink filesystems")
        .long_about(
            "Consistent snapshots in one command: quiesce with a hold command, snapshot (LVM lvcreate -s, a raw \
             device-mapper snapshot, a read-only btrfs snapshot, or a reflink copy), release, mount, run, remove. \
             Reports how long writes were blocked and never leaves a lock, a suspend or an unlisted snapshot behind. \
             Snapshots are recorded in $LVSNAP_STATE_DIR (default /run/lvsnap).",
        )
        .version(env!("CARGO_PKG_VERSION"))
        .subcommand_required(true)
        .arg_required_else_help(true)
        .subcommand(create_args(Command::new("create").about("Take a snapshot of ORIGIN named NAME")))
        .subcommand(
            Command::new("remove")
                .about("Remove snapshot NAME (and its record)")
                .arg(Arg::new("name").value_name("NAME").required(true))
                .arg(Arg::new("umount").long("umount").action(ArgAction::SetTrue).help("Unmount it first if lvsnap mounted it")),
        )
        .subcommand(
            Command::new("list")
                .about("List the snapshots lvsnap made, including leftovers of interrupted runs")
                .arg(Arg::new("json").long("json").action(ArgAction::SetTrue).help("JSON array on stdout")),
        )
        .subcommand(
            Command::new("status")
                .about("State and fill of snapshot NAME (exit 3 when invalid)")
                .arg(Arg::new("name").value_name("NAME").required(true))
                .arg(Arg::new("json").long("json").action(ArgAction::SetTrue).help("JSON object on stdout")),
        )
        .subcommand(
            Command::new("watch")
                .about("Extend an lvm snapshot (or a dm one made with --cow-spare) before it fills; exit 3 loudly when a snapshot became invalid")
                .arg(Arg::new("name").value_name("NAME").required(true))
                .arg(Arg::new("extend_at").long("extend-at").value_name("PERCENT").default_value("70%").value_parser(|s: &str| backend::parse_percent(s, 99)).help("Fill level that triggers an extension"))
                .arg(Arg::new("extend_by").long("extend-by").value_name("PERCENT").default_value("20%").value_parser(|s: &str| backend::parse_percent(s, 1000)).help("Growth, in percent of the current size"))
                .arg(Arg::new("interval").long("interval").value_name("SECONDS").default_value("1").value_parser(value_parser!(f64)).help("Polling interval"))
                .arg(Arg::new("once").long("once").action(ArgAction::SetTrue).help("Check (and extend) once, then exit")),
        )
        .subcommand(
            create_args(Command::new("exec").about("Create, mount, run COMMAND with $LVSNAP_MOUNT, then always unmount and remove"))
                .mut_arg("name", |a| a.required(false).help("Snapshot name (default lvsnap-exec-PID)"))
                .arg(Arg::new("command").value_name("COMMAND").required(true).num_args(1..).last(true).help("Command to run (after --)")),
        )
        .subcommand(
            Command::new("rollback")
                .about("Merge snapshot NAME back into its origin (lvm: lvconvert --merge; dm: snapshot-merge); unmount the origin first")
                .arg(Arg::new("name").value_name("NAME").required(true)),
        )
}

/// The internal watchdog process (`lvsnap __watchdog`), kept out of `command()` and the man
/// pages: only lvsnap starts it.
fn watchdog_command() -> Command {
    Command::new("lvsnap")
        .subcommand_required(true)
        .subcommand(
            Command::new("__watchdog")
                .arg(Arg::new("resume").long("resume").action(ArgAction::Append))
                .arg(Arg::new("thaw").long("thaw").action(ArgAction::Append)),
        )
        .subcommand(
            Command::new("__trace")
                .arg(Arg::new("uuid").long("uuid").required(true))
                .arg(Arg::new("dm_name").long("dm-name").required(true))
                .arg(
                    Arg::new("dev")
                        .long("dev")
                        .required(true)
                        .value_parser(value_parser!(u64)),
                )
                .arg(Arg::new("command").required(true).num_args(1..).last(true)),
        )
}

pub const MAN_TAIL: &str = r#".SH "EXIT STATUS"
.TP
.B 0
Success.
.TP
.B 1
Failure; every step already taken was undone (lock released, device resumed, snapshot removed).
.TP
.B 2
Usage error, including a step that cannot apply to the backend (e.g. \fB\-\-freeze\fR with btrfs).
.TP
.B 3
\fBstatus\fR, \fBwatch\fR: the snapshot is invalid (its copy-on-write space overflowed) or overflowed.
.TP
.B 4
\fBexec\fR: COMMAND failed (the snapshot was still unmounted and removed).
.PP
Killed by SIGINT, SIGTERM or SIGHUP, lvsnap first undoes its steps, then dies by the same signal.
.SH "HOLD PROTOCOL"
The \fB\-\-hold\fR command runs under \fBsh \-c\fR with a pipe on stdin and stdout. It takes its lock, prints a
line \fBREADY\fR, and keeps the lock until its stdin reaches end of file; then it releases the lock and exits 0.
lvsnap snapshots between the two. If lvsnap dies, even by SIGKILL, the pipe closes and the lock is released.
Other lines the command prints on stdout are copied to lvsnap's stderr; its stderr is lvsnap's. The lock-held
time reported is from READY to the command's exit after release.
\fBscripts/hold\-mysql\fR (FLUSH TABLES WITH READ LOCK in one session) and \fBscripts/hold\-postgres\fR (CHECKPOINT)
follow it.
.SH BACKENDS
.TP
.B lvm
ORIGIN is an LVM logical volume: \fBlvcreate \-s\fR, \fBlvremove\fR, \fBlvextend\fR, \fBlvconvert \-\-merge\fR
(rollback: unmount the origin first, or the merge waits for its next activation).
LVM suspends the origin with lockfs, which freezes the filesystem; lvsnap never freezes it beforehand (that makes
lvcreate fail on Linux before 6.8).
With \fB\-\-hold\fR, lvcreate runs under a tracer that stops it only at its device-mapper suspend and resume
ioctls (a seccomp filter returning SECCOMP_RET_TRACE, and ptrace): the hold command is started when lvcreate is
about to suspend the origin and released as soon as the origin's resume has returned, so the lock spans LVM's
suspend only, not its scanning and copy-on-write setup (\fB\-\-hold\-mode suspend\fR); the frozen time reported is
then that suspend window. A hold command that fails or times out there lets lvcreate finish, and the snapshot is
removed. If lvsnap dies, the tracer (a separate process) lets lvcreate finish and the snapshot is listed as
incomplete. Where ptrace or seccomp is not permitted (containers), \fB\-\-hold\-mode auto\fR falls back to
\fBwhole\fR with a warning: the lock is held around the whole lvcreate, and the frozen time reported is lvcreate's
whole run, an upper bound of LVM's suspend.
.TP
.B dm
ORIGIN is a device-mapper device that is not an LV; \fB\-\-cow\fR names the exception device. lvsnap loads the
snapshot-origin and snapshot tables itself and suspends with lockfs; a watchdog process resumes the origin if
lvsnap dies while it is suspended. One snapshot per origin. With \fB\-\-cow\-spare\fR DEVICE (repeatable) the COW
is wrapped in a dm-linear device NAME\-cow and \fBwatch\fR grows it by appending a segment of a spare (reload of
NAME\-cow; the persistent exception store sees the new size at once); without spares, or when they are used up,
\fBwatch\fR fails loudly instead; \fBrollback\fR loads the snapshot-merge target and waits for the merge (origin unmounted).
.TP
.B btrfs
ORIGIN is a subvolume: a read-only snapshot, atomic for the whole subvolume. \fB\-\-freeze\fR is refused (a
snapshot hangs on a frozen filesystem). Rollback: replace the subvolume by a writable snapshot of the snapshot
(\fBbtrfs subvolume snapshot NAME ORIGIN\fR after moving ORIGIN away).
.TP
.B reflink
ORIGIN is a directory on XFS (reflink=1) or btrfs: a FICLONE copy of the tree, atomic per file only, so hold the
database's lock with \fB\-\-hold\fR. \fB\-\-freeze\fR is refused. Rollback: copy back with \fBcp \-a \-\-reflink\fR.
.SH ENVIRONMENT
.TP
.B LVSNAP_STATE_DIR
Where snapshot records are kept (default \fI/run/lvsnap\fR).
.TP
.B LVSNAP_MOUNT, LVSNAP_NAME, LVSNAP_SNAPSHOT
Set for \fBexec\fR's COMMAND: where the snapshot is mounted, its name and its path or device.
.SH EXAMPLES
.nf
lvsnap create /dev/vg0/mysql \-\-name mysqlbackup \-\-size 50M \-\-hold 'scripts/hold\-mysql \-S /run/mysqld/mysqld.sock'
lvsnap exec /dev/vg0/data \-\-size 15% \-\-freeze /srv/data \-\- sh \-c 'tar \-C "$LVSNAP_MOUNT" \-cf \- . | lz4 > /backup/data.tar.lz4'
lvsnap create /srv/btrfs/db \-\-name db\-nightly \-\-hold 'scripts/hold\-mysql \-S /run/mysqld/mysqld.sock' \-\-json
lvsnap watch mysqlbackup \-\-extend\-at 70% \-\-extend\-by 20%
lvsnap list; lvsnap remove db\-nightly
.fi
"#;

pub fn main() -> ExitCode {
    let tool = Tool {
        name: "lvsnap",
        sigpipe: Sigpipe::Ignore,
        internal_error_code: 1,
    };
    let internal = std::env::args_os().nth(1);
    if internal.as_deref() == Some(std::ffi::OsStr::new("__watchdog"))
        || internal.as_deref() == Some(std::ffi::OsStr::new("__trace"))
    {
        return tool.main(watchdog_command(), run);
    }
    tool.main(command(), run)
}

fn run(m: &ArgMatches) -> Result<u8, Failure> {
    match m.subcommand() {
        Some(("create", a)) => with_signals(|sig| cmd_create(a, sig)),
        Some(("exec", a)) => with_signals(|sig| cmd_exec(a, sig)),
        Some(("remove", a)) => cmd_remove(a),
        Some(("list", a)) => cmd_list(a),
        Some(("status", a)) => cmd_status(a),
        Some(("watch", a)) => with_signals(|sig| cmd_watch(a, sig)),
        Some(("rollback", a)) => cmd_rollback(a),
        Some(("__watchdog", a)) => {
            let list = |k: &str| {
                a.get_many::<String>(k)
                    .map(|v| v.cloned().collect::<Vec<_>>())
                    .unwrap_or_default()
            };
            watchdog::run(&list("resume"), &list("thaw"))
        }
        Some(("__trace", a)) => {
            let s = |k: &str| a.get_one::<String>(k).cloned().unwrap_or_default();
            let argv: Vec<String> = a.get_many::<String>("command").unwrap().cloned().collect();
            lvmtrace::tracer_main(
                &s("uuid"),
                &s("dm_name"),
                *a.get_one::<u64>("dev").unwrap(),
                &argv,
            )
        }
        _ => Err(Failure::usage("a subcommand is required")),
    }
}

/// Why a run stopped early.
enum Stop {
    Failed(Failure),
    Signal(Signal),
}

impl From<Failure> for Stop {
    fn from(f: Failure) -> Stop {
        Stop::Failed(f)
    }
}

fn with_signals(f: impl FnOnce(&mut TermSignals) -> Result<u8, Stop>) -> Result<u8, Failure> {
    let mut sig = TermSignals::catch()
        .map_err(|e| Failure::failed(format!("cannot catch signals: {}", e.desc())))?;
    match f(&mut sig) {
        Ok(c) => Ok(c),
        Err(Stop::Failed(e)) => Err(e),
        Err(Stop::Signal(s)) => {
            termsig::reraise(s);
            Err(Failure::new(128u8.wrapping_add(s as u8).min(125), ""))
        }
    }
}

fn check(sig: &mut TermSignals) -> Result<(), Stop> {
    match sig.pending() {
        Some(s) => Err(Stop::Signal(s)),
        None => Ok(()),
    }
}

/// Fault-injection point for tests: `LVSNAP_TEST_PAUSE=<step>` makes lvsnap announce
/// `lvsnap: paused at <step>` on stderr and sleep 30 s there (signals still work).
pub(crate) fn pause(step: &str) {
    if std::env::var("LVSNAP_TEST_PAUSE").ok().as_deref() == Some(step) {
        eprintln!("lvsnap: paused at {step}");
        std::thread::sleep(Duration::from_secs(30));
    }
}

fn pause_sig(step: &str, sig: &mut TermSignals) -> Result<(), Stop> {
    if std::env::var("LVSNAP_TEST_PAUSE").ok().as_deref() == Some(step) {
        eprintln!("lvsnap: paused at {step}");
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(30) {
            check(sig)?;
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    Ok(())
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

fn require_root() -> Result<(), Failure> {
    use std::os::unix::fs::MetadataExt;
    // The owner of /proc/self is our effective uid (no unsafe geteuid here).
    if std::fs::metadata("/proc/self")
        .map(|m| m.uid())
        .unwrap_or(1)
        != 0
    {
        return Err(Failure::failed("must be run as root"));
    }
    Ok(())
}

struct CreateOpts {
    origin: PathBuf,
    name: String,
    kind: Kind,
    size: Option<Size>,
    cow: Option<PathBuf>,
    cow_spares: Vec<PathBuf>,
    dest: Option<PathBuf>,
    freeze: Option<PathBuf>,
    hold: Option<String>,
    hold_timeout: Duration,
    hold_mode: String,
    mount: Option<PathBuf>,
}

/// What `create` measured.
struct Report {
    rec: Record,
    lock_held: Option<Duration>,
    frozen: Option<Duration>,
    snapshot: Duration,
}

fn create_opts(a: &ArgMatches, name: String) -> Result<CreateOpts, Failure> {
    let origin = a.get_one::<PathBuf>("origin").unwrap().clone();
    state::check_name(&name)?;
    let kind = match a.get_one::<String>("backend").map(String::as_str) {
        Some("auto") | None => backend::detect(&origin)?,
        Some(k) => Kind::parse(k).expect("clap checked"),
    };
    let o = CreateOpts {
        origin,
        name,
        kind,
        size: a.get_one::<Size>("size").copied(),
        cow: a.get_one::<PathBuf>("cow").cloned(),
        cow_spares: a
            .get_many::<PathBuf>("cow_spare")
            .map(|v| v.cloned().collect())
            .unwrap_or_default(),
        dest: a.get_one::<PathBuf>("dest").cloned(),
        freeze: a.get_one::<PathBuf>("freeze").cloned(),
        hold: a.get_one::<String>("hold").cloned(),
        hold_timeout: Duration::from_secs(*a.get_one::<u64>("hold_timeout").unwrap()),
        hold_mode: a.get_one::<String>("hold_mode").unwrap().clone(),
        mount: a.get_one::<PathBuf>("mount").cloned(),
    };
    let k = o.kind.name();
    if o.freeze.is_some() && !o.kind.is_block() {
        return Err(Failure::usage(format!(
            "--freeze cannot be used with the {k} backend: a {k} snapshot hangs on a frozen filesystem; use --hold for consistency"
        )));
    }
    if o.size.is_some() && o.kind != Kind::Lvm {
        return Err(Failure::usage(format!(
            "--size applies to the lvm backend only, not {k}"
        )));
    }
    if o.cow.is_some() != (o.kind == Kind::Dm) {
        return Err(Failure::usage(if o.kind == Kind::Dm {
            "dm: --cow DEVICE is required".to_string()
        } else {
            format!("--cow applies to the dm backend only, not {k}")
        }));
    }
    if !o.cow_spares.is_empty() && o.kind != Kind::Dm {
        return Err(Failure::usage(format!(
            "--cow-spare applies to the dm backend only, not {k}"
        )));
    }
    for sp in &o.cow_spares {
        let d = backend::block_devno(sp);
        if d.is_none() {
            return Err(Failure::failed(format!(
                "{}: not a block device",
                sp.display()
            )));
        }
        if d == backend::block_devno(&o.origin)
            || o.cow.as_deref().and_then(backend::block_devno) == d
            || o.cow_spares
                .iter()
                .filter(|x| backend::block_devno(x) == d)
                .count()
                > 1
        {
            return Err(Failure::usage(format!(
                "{}: a spare must be a device of its own (not the origin, the COW or another spare)",
                sp.display()
            )));
        }
    }
    if o.dest.is_some() && o.kind.is_block() {
        return Err(Failure::usage(format!(
            "--dest applies to the btrfs and reflink backends only, not {k}"
        )));
    }
    if o.kind == Kind::Lvm && o.size.is_none() {
        return Err(Failure::usage(
            "lvm: --size is required (e.g. --size 50M or --size 15%)",
        ));
    }
    match o.kind {
        Kind::Btrfs => {
            if !lampvault::btrfs::is_subvolume(&o.origin)
                .map_err(|e| Failure::failed(e.to_string()))?
            {
                return Err(Failure::failed(format!(
                    "{}: not a btrfs subvolume",
                    o.origin.display()
                )));
            }
        }
        Kind::Reflink => {
            if !o.origin.is_dir() {
                return Err(Failure::failed(format!(
                    "{}: not a directory",
                    o.origin.display()
                )));
            }
        }
        Kind::Lvm | Kind::Dm => {
            if backend::block_devno(&o.origin).is_none() {
                return Err(Failure::failed(format!(
                    "{}: not a block device",
                    o.origin.display()
                )));
            }
        }
    }
    if let Some(fz) = &o.freeze {
        // The filesystem at MOUNTPOINT must be the one on ORIGIN: that is what the
        // suspend freezes (lampvault::freeze resolves the mount by statx mnt_id).
        let mi =
            lampvault::freeze::mount_point_of(fz).map_err(|e| Failure::failed(e.to_string()))?;
        if backend::block_devno(&o.origin) != Some(mi.entry.dev) {
            return Err(Failure::failed(format!(
                "{}: not a filesystem on {}",
                fz.display(),
                o.origin.display()
            )));
        }
    }
    Ok(o)
}

/// Take the snapshot, undoing every step in reverse on failure or signal.
fn create(o: &CreateOpts, sig: &mut TermSignals) -> Result<Report, Stop> {
    require_root()?;
    let mut lvm = None;
    let snapshot = match o.kind {
        Kind::Btrfs | Kind::Reflink => ops::path_target(&o.origin, o.dest.as_deref(), &o.name)?
            .to_string_lossy()
            .into_owned(),
        Kind::Lvm => {
            let names = backend::lvm_names(&o.origin)?;
            // A name clash is refused here, before the record names the LV: a leftover
            // record must only ever point at an LV that lvsnap made.
            let vg_lv = format!("{}/{}", names.0, o.name);
            if backend::run_tool("lvs", &["--noheadings", "-o", "lv_name", &vg_lv]).is_ok() {
                return Err(Failure::failed(format!(
                    "{vg_lv}: a logical volume with this name exists"
                ))
                .into());
            }
            let p = format!("/dev/{vg_lv}");
            lvm = Some(names);
            p
        }
        Kind::Dm => {
            let ctl = lampvault::dm::Control::open().map_err(|e| Failure::failed(e.to_string()))?;
            for n in [
                o.name.clone(),
                format!("{}-real", o.name),
                format!("{}-cow", o.name),
            ] {
                if ctl
                    .info(&n)
                    .map_err(|e| Failure::failed(e.to_string()))?
                    .is_some()
                {
                    return Err(Failure::failed(format!(
                        "{n}: a device-mapper device with this name exists"
                    ))
                    .into());
                }
            }
            format!("/dev/mapper/{}", o.name)
        }
    };
    let mut rec = Record {
        name: o.name.clone(),
        backend: o.kind.name().into(),
        origin: o.origin.to_string_lossy().into_owned(),
        snapshot,
        state: "creating".into(),
        mount: None,
        // lvm: the LV is named before lvcreate runs, so `remove` finds it even when lvsnap
        // was killed while lvcreate (which then completes on its own) was running.
        extra: match (&lvm, &o.cow) {
            (Some((vg, _)), _) => Some(format!("{vg}/{}", o.name)),
            (None, Some(c)) => Some(c.to_string_lossy().into_owned()),
            (None, None) => None,
        },
        spares: o
            .cow_spares
            .iter()
            .map(|p| p.to_string_lossy().into_owned())
            .collect(),
        created: now(),
        pid: std::process::id(),
    };
    rec.claim()?;
    let mut made = false;
    let mut hold: Option<hold::Hold> = None;
    let r = (|| -> Result<Report, Stop> {
        // lvm with a hold: the lock only around LVM's suspend of the origin (lvmtrace.rs).
        let mut traced = None;
        if let (Kind::Lvm, Some(cmd), false) = (o.kind, &o.hold, o.hold_mode == "whole") {
            let (args, vg_lv) = ops::lvcreate_args(&o.origin, &rec, o.size, lvm.as_ref())?;
            let t0 = Instant::now();
            match lvmtrace::lvcreate_held(&args, &o.origin, cmd, o.hold_timeout, sig, &mut made)? {
                lvmtrace::Outcome::Done(t) => traced = Some((t, t0.elapsed(), vg_lv)),
                lvmtrace::Outcome::Unavailable(why) if o.hold_mode == "auto" => eprintln!(
                    "lvsnap: {}: warning: cannot trace lvcreate ({why}): the lock is held around the whole lvcreate (--hold-mode whole)",
                    rec.name
                ),
                lvmtrace::Outcome::Unavailable(why) => {
                    return Err(Failure::failed(format!(
                        "cannot trace lvcreate ({why}): use --hold-mode whole"
                    ))
                    .into())
                }
            }
        }
        let (lock_held, frozen, snap_time) = if let Some((t, snap_time, vg_lv)) = traced {
            if rec.extra.as_deref() != Some(vg_lv.as_str()) {
                rec.extra = Some(vg_lv);
                rec.save()?;
            }
            pause_sig("snapshot", sig)?;
            let frozen = o.freeze.as_ref().map(|_| t.suspended);
            (Some(t.lock_held), frozen, snap_time)
        } else {
            if let Some(cmd) = &o.hold {
                let h = hold.insert(hold::Hold::start(cmd)?);
                match h.wait_ready(sig, o.hold_timeout) {
                    Ok(()) => {}
                    Err(hold::WaitError::Failed(f)) => return Err(Stop::Failed(f)),
                    Err(hold::WaitError::Signal(s)) => return Err(Stop::Signal(s)),
                }
                pause_sig("held", sig)?;
            }
            check(sig)?;
            let t0 = Instant::now();
            // The record already says where the snapshot will be; a failing `make` cleans up
            // after itself, so only a successful one is undone here.
            let (extra, blocked) = ops::make(o.kind, &o.origin, &rec, o.size, false, lvm.as_ref())?;
            made = true;
            let snap_time = t0.elapsed();
            if extra.is_some() && extra != rec.extra {
                rec.extra = extra;
                rec.save()?;
            }
            pause_sig("snapshot", sig)?;
            let lock_held = match hold.take() {
                Some(mut h) => Some(h.release()?),
                None => None,
            };
            let frozen = if o.freeze.is_some() { blocked } else { None };
            (lock_held, frozen, snap_time)
        };
        ops::after_release(o.kind, &rec);
        check(sig)?;
        if let Some(dir) = &o.mount {
            rec.mount = Some(dir.to_string_lossy().into_owned());
            rec.save()?;
            ops::mount(&rec, dir)?;
            pause_sig("mounted", sig)?;
        }
        rec.state = "ready".into();
        rec.save()?;
        Ok(Report {
            rec: rec.clone(),
            lock_held,
            frozen,
            snapshot: snap_time,
        })
    })();
    match r {
        Ok(rep) => Ok(rep),
        Err(e) => {
            // Undo: release the lock first (it blocks the database), then the rest in
            // reverse order of creation.
            drop(hold.take());
            if let Some(m) = &rec.mount {
                if ops::is_mounted(Path::new(m)) {
                    let _ = ops::umount(Path::new(m));
                }
            }
            if made {
                if let Err(f) = ops::remove(&rec) {
                    eprintln!(
                        "lvsnap: {}: cleanup failed, snapshot left behind (see lvsnap list): {}",
                        rec.name, f.msg
                    );
                    return Err(e);
                }
            }
            let _ = rec.delete();
            Err(e)
        }
    }
}

fn report_json(r: &Report) -> serde_json::Value {
    serde_json::json!({
        "name": r.rec.name,
        "backend": r.rec.backend,
        "origin": r.rec.origin,
        "snapshot": r.rec.snapshot,
        "mount": r.rec.mount,
        "lock_held_ms": r.lock_held.map(ms),
        "frozen_ms": r.frozen.map(ms),
        "snapshot_ms": ms(r.snapshot),
    })
}

fn report(r: &Report, json: bool, verbose: bool) {
    if json {
        // A closed stdout must not fail a snapshot that is already made (or removed).
        let _ = out(&format!("{}\n", report_json(r)));
    }
    if verbose {
        let opt = |d: Option<Duration>| {
            d.map(|d| format!("{:.1} ms", ms(d)))
                .unwrap_or_else(|| "-".into())
        };
        eprintln!(
            "lvsnap: {}: {} snapshot {} in {:.1} ms, lock held {}, frozen {}",
            r.rec.name,
            r.rec.backend,
            r.rec.snapshot,
            ms(r.snapshot),
            opt(r.lock_held),
            opt(r.frozen)
        );
    }
}

fn cmd_create(a: &ArgMatches, sig: &mut TermSignals) -> Result<u8, Stop> {
    let o = create_opts(a, a.get_one::<String>("name").unwrap().clone())?;
    let r = create(&o, sig)?;
    report(&r, a.get_flag("json"), a.get_flag("verbose"));
    Ok(0)
}

fn cmd_exec(a: &ArgMatches, sig: &mut TermSignals) -> Result<u8, Stop> {
    let name = a
        .get_one::<String>("name")
        .cloned()
        .unwrap_or_else(|| format!("lvsnap-exec-{}", std::process::id()));
    let mut o = create_opts(a, name)?;
    let argv: Vec<String> = a.get_many::<String>("command").unwrap().cloned().collect();
    // Block backends need a mount point; path backends already are one.
    let mut own_dir = None;
    if o.mount.is_none() && o.kind.is_block() {
        let d = state::dir().join("mnt").join(&o.name);
        std::fs::create_dir_all(&d).map_err(|e| Failure::io(d.display(), &e))?;
        own_dir = Some(d.clone());
        o.mount = Some(d);
    }
    let r = match create(&o, sig) {
        Ok(r) => r,
        Err(e) => {
            if let Some(d) = &own_dir {
                let _ = std::fs::remove_dir(d);
            }
            return Err(e);
        }
    };
    let mnt = r
        .rec
        .mount
        .clone()
        .unwrap_or_else(|| r.rec.snapshot.clone());
    let st = std::process::Command::new(&argv[0])
        .args(&argv[1..])
        .env("LVSNAP_MOUNT", &mnt)
        .env("LVSNAP_NAME", &r.rec.name)
        .env("LVSNAP_SNAPSHOT", &r.rec.snapshot)
        .status();
    // Always clean up, whatever COMMAND did.
    let mut cleanup = Ok(());
    if let Some(m) = &r.rec.mount {
        cleanup = ops::umount(Path::new(m));
    }
    if cleanup.is_ok() {
        cleanup = ops::remove(&r.rec).and_then(|_| r.rec.delete());
    }
    if let Some(d) = &own_dir {
        let _ = std::fs::remove_dir(d);
    }
    report(&r, a.get_flag("json"), a.get_flag("verbose"));
    cleanup?;
    check(sig)?;
    match st {
        Ok(s) if s.success() => Ok(0),
        Ok(s) => {
            use std::os::unix::process::ExitStatusExt;
            let how = s
                .code()
                .map(|c| format!("status {c}"))
                .unwrap_or_else(|| format!("signal {}", s.signal().unwrap_or(0)));
            Err(Failure::new(EXIT_COMMAND, format!("{}: exited with {how}", argv[0])).into())
        }
        Err(e) => Err(Failure::new(
            EXIT_COMMAND,
            format!("{}: {}", argv[0], crate::common::errno_text(&e)),
        )
        .into()),
    }
}

fn cmd_remove(a: &ArgMatches) -> Result<u8, Failure> {
    require_root()?;
    let name = a.get_one::<String>("name").unwrap();
    state::check_name(name)?;
    let mut rec = Record::load(name)?;
    if rec.owner_alive() {
        return Err(Failure::failed(format!(
            "{name}: being created by process {}",
            rec.pid
        )));
    }
    if let Some(m) = rec.mount.clone() {
        if ops::is_mounted(Path::new(&m)) {
            if !a.get_flag("umount") {
                return Err(Failure::failed(format!(
                    "{name}: mounted on {m} (use --umount)"
                )));
            }
            ops::umount(Path::new(&m))?;
        }
    }
    rec.state = "removing".into();
    rec.save()?;
    ops::remove(&rec)?;
    rec.delete()?;
    Ok(0)
}

fn status_json(rec: &Record, st: &backend::Status) -> serde_json::Value {
    serde_json::json!({
        "name": rec.name,
        "backend": rec.backend,
        "origin": rec.origin,
        "snapshot": rec.snapshot,
        "mount": rec.mount,
        "state": st.state,
        "percent": st.percent,
        "size": st.size,
        "created": rec.created,
    })
}

/// Write `text` to stdout. SIGPIPE is ignored (lvsnap must never die mid-step), so a
/// reader that went away (`lvsnap list | grep -q`) ends the command quietly with exit 1.
fn out(text: &str) -> Result<(), Failure> {
    use std::io::Write;
    let mut o = std::io::stdout().lock();
    match o.write_all(text.as_bytes()).and_then(|_| o.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Err(Failure::new(1, "")),
        Err(e) => Err(Failure::io("stdout", &e)),
    }
}

fn cmd_list(a: &ArgMatches) -> Result<u8, Failure> {
    let all = state::all()?;
    if a.get_flag("json") {
        let v: Vec<_> = all
            .iter()
            .map(|r| {
                let st = ops::status(r).unwrap_or(backend::Status {
                    state: "unknown".into(),
                    percent: None,
                    size: None,
                });
                status_json(r, &st)
            })
            .collect();
        out(&format!("{}\n", serde_json::Value::Array(v)))?;
        return Ok(0);
    }
    for r in &all {
        let st = ops::status(r)
            .map(|s| s.state)
            .unwrap_or_else(|_| "unknown".into());
        out(&format!(
            "{}\t{}\t{}\t{}\t{}\t{}\n",
            r.name,
            r.backend,
            st,
            r.origin,
            r.snapshot,
            r.mount.as_deref().unwrap_or("-")
        ))?;
    }
    Ok(0)
}

fn cmd_status(a: &ArgMatches) -> Result<u8, Failure> {
    let name = a.get_one::<String>("name").unwrap();
    state::check_name(name)?;
    let rec = Record::load(name)?;
    let st = ops::status(&rec)?;
    if a.get_flag("json") {
        out(&format!("{}\n", status_json(&rec, &st)))?;
    } else {
        let pct = st
            .percent
            .map(|p| format!("{p:.2}%"))
            .unwrap_or_else(|| "-".into());
        out(&format!("{}\t{}\t{}\n", rec.name, st.state, pct))?;
    }
    if st.state == "invalid" || st.state == "overflow" {
        return Err(Failure::new(
            EXIT_INVALID,
            format!(
                "{name}: snapshot is {}: its copy-on-write space overflowed",
                st.state
            ),
        ));
    }
    Ok(0)
}

fn cmd_watch(a: &ArgMatches, sig: &mut TermSignals) -> Result<u8, Stop> {
    require_root()?;
    let name = a.get_one::<String>("name").unwrap();
    state::check_name(name)?;
    let at = *a.get_one::<u32>("extend_at").unwrap() as f64;
    let by = *a.get_one::<u32>("extend_by").unwrap() as u64;
    let interval =
        Duration::from_secs_f64(a.get_one::<f64>("interval").unwrap().clamp(0.05, 3600.0));
    let rec = Record::load(name)?;
    let kind = Kind::parse(&rec.backend).unwrap_or(Kind::Reflink);
    if !kind.is_block() {
        return Err(Failure::usage(format!(
            "{name}: {} snapshots share space with their origin: nothing to watch",
            rec.backend
        ))
        .into());
    }
    loop {
        let st = ops::status(&rec)?;
        match st.state.as_str() {
            "invalid" | "overflow" => {
                return Err(Failure::new(EXIT_INVALID, format!("{name}: SNAPSHOT IS {}: its copy-on-write space overflowed; its contents are lost", st.state.to_uppercase())).into())
            }
            "missing" => return Err(Failure::failed(format!("{name}: snapshot is gone")).into()),
            _ => {}
        }
        if st.percent.unwrap_or(0.0) >= at {
            match (kind, &rec.extra, st.size) {
                (Kind::Lvm, Some(vg_lv), Some(size)) => {
                    let grow = (size * by / 100).max(1 << 20);
                    backend::run_tool("lvextend", &["-q", "-L", &format!("+{grow}b"), vg_lv])?;
                    eprintln!(
                        "lvsnap: {name}: {:.1}% full, extended by {} MiB",
                        st.percent.unwrap_or(0.0),
                        grow >> 20
                    );
                }
                (Kind::Dm, _, Some(size)) => {
                    let grow = (size * by / 100).max(1 << 20);
                    let added = dmsnap::extend(&rec, grow).map_err(|e| {
                        Failure::failed(format!(
                            "{name}: {:.1}% full and {}",
                            st.percent.unwrap_or(0.0),
                            e.msg
                        ))
                    })?;
                    eprintln!(
                        "lvsnap: {name}: {:.1}% full, extended by {} MiB",
                        st.percent.unwrap_or(0.0),
                        added >> 20
                    );
                }
                _ => {
                    return Err(Failure::failed(format!(
                        "{name}: {:.1}% full and its size is unknown: cannot extend it",
                        st.percent.unwrap_or(0.0)
                    ))
                    .into())
                }
            }
        }
        if a.get_flag("once") {
            return Ok(0);
        }
        let t = Instant::now();
        while t.elapsed() < interval {
            check(sig)?;
            std::thread::sleep(Duration::from_millis(20).min(interval));
        }
    }
}

fn cmd_rollback(a: &ArgMatches) -> Result<u8, Failure> {
    require_root()?;
    let name = a.get_one::<String>("name").unwrap();
    state::check_name(name)?;
    let rec = Record::load(name)?;
    match Kind::parse(&rec.backend) {
        Some(Kind::Lvm) => {
            let vg_lv = rec.extra.clone().ok_or_else(|| Failure::failed(format!("{name}: record has no LV name")))?;
            backend::run_tool("lvconvert", &["-q", "--merge", &vg_lv])?;
            rec.delete()?;
            Ok(0)
        }
        Some(Kind::Dm) => {
            dmsnap::rollback(&rec)?;
            rec.delete()?;
            Ok(0)
        }
        Some(k) => Err(Failure::usage(format!(
            "{name}: rollback is not automated for the {} backend: see lvsnap(8), BACKENDS, for the equivalent steps",
            k.name()
        ))),
        None => Err(Failure::failed(format!("{name}: unknown backend '{}'", rec.backend))),
    }
}
