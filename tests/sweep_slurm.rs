//! The Slurm launcher against a real single-node Slurm started here (Debian's `slurm-wlm` and `munge`; a slurm.conf
//! in a temporary folder, `slurmctld -D` and `slurmd -D` in the foreground, stopped by a guard even on panic): a
//! 4-point tiny sweep runs as one job array and the aggregation job writes its report; a point sent the preemption
//! signal mid-stage requeues itself, resumes and ends with the numbers of an uninterrupted run; a point killed
//! mid-run shows as failed in `relab status` with its log, and `relab resubmit` redoes it alone. Also `--dry-run`,
//! and the error when Slurm's commands are missing.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const SWEEP: &str = "\
name: sweep-slurm
seed: 1
dataset: { name: fashion-mnist, labels_per_class: 1, train_limit: 100, test_limit: 20 }
launcher: slurm
slurm: { cpus: 1, parallel: 2, setup: [\"echo setup line ran\"] }
stages:
  train:
    plugin: supervised
    backbone: wrn10_2
    epochs: 6
    batch_size: 10
    min_steps_per_epoch: 2
    schedule: { lr: 0.05 }
    eval_batch_size: 20
sweep:
  seed: [1, 2]
  stages.train.schedule.lr: [0.05, 0.1]
";

const FOLDERS: [&str; 4] = [
    "seed=1,stages.train.schedule.lr=0.05",
    "seed=1,stages.train.schedule.lr=0.1",
    "seed=2,stages.train.schedule.lr=0.05",
    "seed=2,stages.train.schedule.lr=0.1",
];

/// Two long points with a one-minute time limit: Slurm signals them 50 s ahead of it, so ~10 s into each start.
const TIME_LIMITED: &str = "\
name: sweep-time-limit
seed: 1
dataset: { name: fashion-mnist, labels_per_class: 1, train_limit: 100, test_limit: 20 }
launcher: slurm
slurm: { cpus: 1, time: \"1\", grace: 50, timeout_requeues: 1 }
stages:
  train:
    plugin: supervised
    backbone: wrn10_2
    epochs: 200
    batch_size: 10
    min_steps_per_epoch: 2
    schedule: { lr: 0.05 }
    eval_batch_size: 20
sweep:
  seed: [1, 2]
";

/// One cluster at a time: the daemons listen on Slurm's fixed ports.
static CLUSTER: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn experiment(dir: &Path) -> PathBuf {
    assert!(
        Path::new("/usr/share/datasets/fashion-mnist").is_dir() || std::env::var_os("RELAB_DATA").is_some(),
        "needs Fashion-MNIST: apt-get install dataset-fashion-mnist"
    );
    let path = dir.join("sweep-slurm.yaml");
    fs::write(&path, SWEEP).unwrap();
    path
}

fn arg(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

fn wait_for(what: &str, seconds: u64, mut ready: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ready() {
        assert!(start.elapsed() < Duration::from_secs(seconds), "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A single-node Slurm cluster of this test, its daemons stopped (and its jobs cancelled) on drop.
struct Cluster {
    dir: tempfile::TempDir,
    daemons: Vec<Child>,
    /// The munged this test started, if it had to.
    munged: Option<i32>,
}

fn installed(program: &str) -> bool {
    ["/usr/bin", "/usr/sbin", "/bin", "/sbin"].iter().any(|d| Path::new(d).join(program).is_file())
}

fn munged_pid() -> Option<i32> {
    let pid: i32 = fs::read_to_string("/run/munge/munged.pid").ok()?.trim().parse().ok()?;
    Path::new(&format!("/proc/{pid}")).exists().then_some(pid)
}

impl Cluster {
    fn start() -> Cluster {
        for program in ["sbatch", "scontrol", "squeue", "scancel", "slurmctld", "slurmd", "munged"] {
            assert!(
                installed(program),
                "`{program}` is missing: these tests need a real Slurm; install it with \
                 `apt-get install -y slurm-wlm munge` (as .ci/run does)"
            );
        }
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        for sub in ["state", "spool", "log"] {
            fs::create_dir_all(d.join(sub)).unwrap();
        }
        let conf = format!(
            "ClusterName=relabtest\nSlurmctldHost=localhost\nSlurmUser=root\nSlurmdUser=root\nAuthType=auth/munge\n\
             CredType=cred/munge\nStateSaveLocation={d}/state\nSlurmdSpoolDir={d}/spool\n\
             SlurmctldPidFile={d}/slurmctld.pid\nSlurmdPidFile={d}/slurmd.pid\n\
             SlurmctldLogFile={d}/log/slurmctld.log\nSlurmdLogFile={d}/log/slurmd.log\n\
             ProctrackType=proctrack/linuxproc\nTaskPlugin=task/none\nSelectType=select/cons_tres\n\
             SelectTypeParameters=CR_Core\nMpiDefault=none\nReturnToService=2\nJobAcctGatherType=jobacct_gather/none\n\
             AccountingStorageType=accounting_storage/none\nMaxArraySize=3\nNodeName=localhost CPUs=2 State=UNKNOWN\n\
             PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP\n",
            d = d.display()
        );
        fs::write(d.join("slurm.conf"), conf).unwrap();
        let mut munged = None;
        if munged_pid().is_none() {
            let ok = Command::new("sh")
                .args([
                    "-c",
                    "mkdir -p /run/munge && chown munge:munge /run/munge && su -s /bin/sh munge -c /usr/sbin/munged",
                ])
                .status()
                .unwrap()
                .success();
            assert!(ok, "cannot start munged");
            wait_for("munged", 10, || munged_pid().is_some());
            munged = munged_pid();
        }
        let mut cluster = Cluster { dir, daemons: Vec::new(), munged };
        for (program, args, log) in
            [("slurmctld", &["-D"][..], "ctld.out"), ("slurmd", &["-D", "-N", "localhost"][..], "d.out")]
        {
            let out = fs::File::create(cluster.dir.path().join("log").join(log)).unwrap();
            let child = Command::new(program)
                .args(args)
                .env("SLURM_CONF", cluster.conf())
                .stdout(out.try_clone().unwrap())
                .stderr(out)
                .spawn()
                .unwrap();
            cluster.daemons.push(child);
        }
        wait_for("the node to be idle", 60, || {
            let o = cluster.command("sinfo").args(["-h", "-o", "%T"]).output().unwrap();
            String::from_utf8_lossy(&o.stdout).trim() == "idle"
        });
        cluster
    }

    fn conf(&self) -> PathBuf {
        self.dir.path().join("slurm.conf")
    }

    fn command(&self, program: &str) -> Command {
        let mut c = Command::new(program);
        c.env("SLURM_CONF", self.conf()).env("RUST_LOG", "info");
        c
    }

    fn relab(&self, args: &[&str]) -> Output {
        self.command(env!("CARGO_BIN_EXE_relab")).args(args).output().unwrap()
    }

    fn ok(&self, program: &str, args: &[&str]) -> String {
        let o = self.command(program).args(args).output().unwrap();
        assert!(o.status.success(), "{program} {args:?}: {}", text(&o));
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    /// Waits until no job of the cluster is left.
    fn drain(&self, seconds: u64) {
        wait_for("the queue to empty", seconds, || self.ok("squeue", &["-h"]).trim().is_empty());
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // Jobs would outlive slurmd: cancel them first (this cluster's only: SLURM_CONF names it).
        let _ = self.command("scancel").args(["--full", "-u", "root"]).output();
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(15)
            && self.command("squeue").arg("-h").output().is_ok_and(|o| !o.stdout.is_empty())
        {
            std::thread::sleep(Duration::from_millis(100));
        }
        for child in self.daemons.iter_mut().rev() {
            // SAFETY: kill(2) of a daemon this guard started.
            unsafe { libc_kill(child.id() as i32, 15) };
            let _ = child.wait();
        }
        if let Some(pid) = self.munged {
            // SAFETY: kill(2) of the munged this guard started.
            unsafe { libc_kill(pid, 15) };
        }
    }
}

unsafe extern "C" {
    #[link_name = "kill"]
    fn libc_kill(pid: i32, signal: i32) -> i32;
}

/// `summary.json` without the timings, and every metrics record without its wall-clock fields.
fn numbers(run_dir: &Path) -> (serde_json::Value, Vec<serde_json::Value>) {
    let mut summary: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(run_dir.join("summary.json")).unwrap()).unwrap();
    summary.as_object_mut().unwrap().remove("seconds");
    let metrics = fs::read_to_string(run_dir.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
            v.as_object_mut().unwrap().retain(|k, _| !k.contains("second") && k != "time" && k != "timestamp");
            v
        })
        .collect();
    (summary, metrics)
}

fn lines(path: &Path) -> usize {
    fs::read_to_string(path).map_or(0, |t| t.lines().count())
}

/// `scancel --signal=SIGNAL --batch TASK`, as Slurm's preemption or a user would, until the point's log shows it
/// arrived. Slurm 22.05's scancel delivers it at once but, while other tasks of the array are pending, may go on
/// retrying ("Job is in transitional state") for a minute and a half: it is stopped once the signal is in.
fn signal(cluster: &Cluster, signal: &str, task: &str, log: &Path) {
    let mut scancel = cluster
        .command("scancel")
        .args([&format!("--signal={signal}"), "--batch", task])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let arrived = format!("relab sweep: SIG{signal} received");
    wait_for("the signal in the point's log", 60, || fs::read_to_string(log).is_ok_and(|l| l.contains(&arrived)));
    if scancel.try_wait().unwrap().is_none() {
        let _ = scancel.kill();
    }
    let _ = scancel.wait();
}

/// Waits for `task` to be requeued and starts it again soon: a requeued job waits ~2 minutes before it may start
/// again, and an update made while the requeue is under way may be undone by it, so it is repeated until it runs.
/// slurmd revokes the old run's credential with a one-second resolution: a restart within the second of the requeue
/// is killed as "non-startable batch job: Job credential revoked", so the restart waits two seconds first.
fn restart_now(cluster: &Cluster, task: &str) {
    wait_for("the task requeued", 120, || state(cluster, task) == "PENDING");
    std::thread::sleep(Duration::from_secs(2));
    wait_for("the requeued task running again", 60, || {
        let _ = cluster.command("scontrol").args(["update", &format!("JobId={task}"), "StartTime=now"]).output();
        std::thread::sleep(Duration::from_millis(500));
        state(cluster, task) != "PENDING"
    });
}

fn state(cluster: &Cluster, task: &str) -> String {
    cluster.ok("squeue", &["-h", "-j", task, "-o", "%T"]).trim().to_string()
}

#[test]
fn a_sweep_runs_as_a_job_array_survives_preemption_and_resubmits_a_failed_point() {
    let _one = CLUSTER.lock().unwrap_or_else(|e| e.into_inner());
    let started = Instant::now();
    let cluster = Cluster::start();
    eprintln!("{:?}: cluster up", started.elapsed());
    let tmp = tempfile::tempdir().unwrap();
    let exp = experiment(tmp.path());
    let sweep = tmp.path().join("sweep");

    // --dry-run: the scripts and the sbatch lines, nothing written or submitted. The cluster's MaxArraySize of 3
    // (task ids 0 to 2) splits the 4 points into two arrays.
    let o = cluster.relab(&["run", arg(&exp), "--out", arg(&sweep), "--no-cache", "--dry-run"]);
    assert!(o.status.success(), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    let task_sh = sweep.join("slurm/task.sh");
    assert!(out.starts_with(&format!("# {}\n#!/bin/bash\n", task_sh.display())), "{out}");
    assert!(out.contains("#SBATCH --cpus-per-task=1\n#SBATCH --signal") || out.contains("#SBATCH --cpus-per-task=1\n"));
    assert!(
        out.contains(&format!(
            "\nsbatch --parsable --array=0-2%2 --export=ALL,RELAB_OFFSET=0 {0}\n\
             sbatch --parsable --array=0%2 --export=ALL,RELAB_OFFSET=3 {0}\n\
             sbatch --parsable --dependency=afterany:ARRAY1_JOB_ID:ARRAY2_JOB_ID {1}\n",
            task_sh.display(),
            sweep.join("slurm/report.sh").display()
        )),
        "{out}"
    );
    assert!(out.ends_with("# dry run: nothing submitted (4 point(s), 2 array(s))\n"), "{out}");
    assert!(!sweep.exists(), "a dry run writes nothing");
    assert!(cluster.ok("squeue", &["-h"]).trim().is_empty());

    // The sweep as two arrays (jobs 1 and 2: tasks 1_0 .. 1_2 run points 0 to 2, task 2_0 point 3) and the
    // report job (3).
    let o = cluster.relab(&["run", arg(&exp), "--out", arg(&sweep), "--no-cache"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("submitted 4 point(s) as Slurm job array(s) 1, 2 "),
        "{}",
        text(&o)
    );
    assert_eq!(
        fs::read_to_string(sweep.join("slurm/jobs")).unwrap(),
        "array 1 0-2%2 offset 0\narray 2 0%2 offset 3\nreport 3\n"
    );
    let squeue = cluster.ok("squeue", &["-h", "-j", "3", "-o", "%E"]);
    assert!(
        squeue.contains("afterany:1_") && squeue.contains("afterany:2_"),
        "the report waits for the arrays: {squeue}"
    );
    // While its jobs are in the queue, the sweep is not submitted a second time.
    let o = cluster.relab(&["resubmit", arg(&sweep)]);
    assert!(
        !o.status.success() && text(&o).contains("job(s) 1, 2, 3 of this sweep are still queued or running"),
        "{}",
        text(&o)
    );

    // Point 0 gets the preemption signal in the middle of its training stage.
    let live = sweep.join(FOLDERS[0]).join("train/metrics.jsonl");
    wait_for("point 0's second epoch", 120, || lines(&live) >= 2);
    eprintln!("{:?}: point 0 in its second epoch", started.elapsed());
    signal(&cluster, "USR2", "1_0", &sweep.join(format!("{}.log", FOLDERS[0])));
    // Point 1 is killed outright while it runs: it fails.
    let pid_file = sweep.join(format!("{}.pid", FOLDERS[1]));
    wait_for("point 1's process", 120, || lines(&sweep.join(FOLDERS[1]).join("train/metrics.jsonl")) >= 1);
    let pid: i32 = fs::read_to_string(&pid_file).unwrap().trim().parse().unwrap();
    // SAFETY: kill(2) of the relab process the test's sweep started.
    unsafe { libc_kill(pid, 9) };
    // A requeued task waits ~2 minutes before it may start again, unless told otherwise.
    restart_now(&cluster, "1_0");
    eprintln!("{:?}: point 0 requeued and restarted", started.elapsed());

    // The same point uninterrupted, on as many threads, as the reference.
    let reference = tmp.path().join("reference");
    let o = cluster
        .command(env!("CARGO_BIN_EXE_relab"))
        .args(["run", arg(&exp), "--no-cache", "--point", FOLDERS[0], "--out", arg(&reference)])
        .env("RAYON_NUM_THREADS", "1")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    eprintln!("{:?}: reference run done", started.elapsed());
    cluster.drain(240);
    eprintln!("{:?}: sweep done", started.elapsed());

    let log0 = fs::read_to_string(sweep.join(format!("{}.log", FOLDERS[0]))).unwrap();
    assert!(log0.contains("relab sweep: SIGUSR2 received"), "{log0}");
    // relab itself caught the forwarded signal in the middle of the stage and checkpointed there.
    assert!(log0.contains("train: SIGUSR2 received: checkpointed "), "{log0}");
    assert!(log0.contains("relab sweep: preempted (SIGUSR2 ahead of the time limit); requeued\n"), "{log0}");
    assert!(log0.contains(" with --resume (Slurm task 1_0 on "), "{log0}");
    assert!(log0.ends_with("ended: exit code 0\n"), "{log0}");
    assert!(!sweep.join(format!("{}.timeouts", FOLDERS[0])).exists(), "a preemption is no time-out");
    let log3 = fs::read_to_string(sweep.join(format!("{}.log", FOLDERS[3]))).unwrap();
    assert!(log3.contains("(Slurm task 2_0 on ") && log3.ends_with("ended: exit code 0\n"), "the second array: {log3}");
    assert_eq!(
        numbers(&sweep.join(FOLDERS[0])),
        numbers(&reference),
        "the requeued point must end as if uninterrupted"
    );

    // The report job wrote the report of the points that finished; status names the killed one, with its log.
    assert!(sweep.join("report.md").is_file() && sweep.join("summary.csv").is_file());
    let report_out = fs::read_to_string(sweep.join("slurm/report-3.out")).unwrap();
    assert!(report_out.contains("setup line ran\n| group | runs |"), "{report_out}");
    let o = cluster.relab(&["status", arg(&sweep)]);
    let status = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(status.contains(&format!("failed       {}\n", FOLDERS[1])), "{status}");
    assert!(status.contains(&format!("| relab sweep: {} ended: exit code 137\n", FOLDERS[1])), "{status}");
    assert!(status.ends_with("4 points: 3 done, 0 running, 1 failed, 0 not started\n"), "{status}");

    // Resubmission redoes the failed point alone, resumed, then the report again.
    let modified = |folder: &str| fs::metadata(sweep.join(folder).join("report.md")).unwrap().modified().unwrap();
    let before: Vec<_> = [0, 2, 3].iter().map(|&i| modified(FOLDERS[i])).collect();
    let o = cluster.relab(&["resubmit", arg(&sweep)]);
    assert!(o.status.success(), "{}", text(&o));
    let jobs = fs::read_to_string(sweep.join("slurm/jobs")).unwrap();
    let last: Vec<&str> = jobs.lines().skip(3).collect();
    assert!(last.len() == 2 && last[0].starts_with("array ") && last[0].ends_with(" 1%2 offset 0"), "{jobs}");
    let (array, report) = (last[0].split(' ').nth(1).unwrap(), last[1].strip_prefix("report ").unwrap());
    let submitted = format!("submitted 1 point(s) as Slurm job array(s) {array} ");
    assert!(String::from_utf8_lossy(&o.stdout).contains(&submitted), "{}", text(&o));
    cluster.drain(120);
    eprintln!("{:?}: resubmission done", started.elapsed());
    let o = cluster.relab(&["status", arg(&sweep)]);
    assert!(String::from_utf8_lossy(&o.stdout).ends_with("4 points: 4 done, 0 running, 0 failed, 0 not started\n"));
    let after: Vec<_> = [0, 2, 3].iter().map(|&i| modified(FOLDERS[i])).collect();
    assert_eq!(before, after, "the finished points are left alone");
    let log1 = fs::read_to_string(sweep.join(format!("{}.log", FOLDERS[1]))).unwrap();
    let resumed = format!(" with --resume (Slurm task {array}_1 on ");
    assert!(log1.contains(&resumed) && log1.ends_with("ended: exit code 0\n"), "{log1}");
    let csv = fs::read_to_string(sweep.join("summary.csv")).unwrap();
    assert!(csv.lines().nth(2).unwrap().starts_with("stages.train.schedule.lr=0.1,2,1 2,"), "{csv}");
    let report_out = fs::read_to_string(sweep.join(format!("slurm/report-{report}.out"))).unwrap();
    assert!(report_out.contains("| group | runs |"), "{report_out}");
}

#[test]
#[ignore = "about 1.5 minutes: waits for two time limits"]
fn a_time_limit_requeues_at_most_timeout_requeues_times() {
    let _one = CLUSTER.lock().unwrap_or_else(|e| e.into_inner());
    let cluster = Cluster::start();
    let tmp = tempfile::tempdir().unwrap();
    experiment(tmp.path());
    let exp = tmp.path().join("time-limit.yaml");
    fs::write(&exp, TIME_LIMITED).unwrap();
    let sweep = tmp.path().join("sweep");
    let o = cluster.relab(&["run", arg(&exp), "--out", arg(&sweep), "--no-cache"]);
    assert!(o.status.success(), "{}", text(&o));
    let log = sweep.join("seed=1.log");
    let read = || fs::read_to_string(&log).unwrap_or_default();
    wait_for("the first time limit", 90, || {
        read().contains("relab sweep: time limit; requeued (1 of 1 at the time limit)\n")
    });
    assert_eq!(fs::read_to_string(sweep.join("seed=1.timeouts")).unwrap(), "1\n");
    restart_now(&cluster, "1_0");
    let start = Instant::now();
    while !read().contains("relab sweep: time limit; not requeued") {
        let queue = cluster.ok("squeue", &["-h", "-o", "%i %T %e %L"]);
        assert!(start.elapsed() < Duration::from_secs(120), "no second time limit; log:\n{}\nqueue:\n{queue}", read());
        std::thread::sleep(Duration::from_millis(200));
    }
    let text = read();
    assert!(text.contains("with --resume (Slurm task 1_0 on "), "{text}");
    assert!(
        text.contains("not requeued: it was requeued at its time limit 1 time(s) already (slurm.timeout_requeues: 1)"),
        "{text}"
    );
    assert!(!text.contains("preempted"), "{text}");
    wait_for("point 0 gone from the queue", 60, || state(&cluster, "1_0").is_empty());
    let o = cluster.relab(&["status", arg(&sweep)]);
    let status = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(status.contains("failed       seed=1\n"), "{status}");
    assert!(status.contains("| relab sweep: time limit; not requeued"), "{status}");
}

#[test]
fn without_slurm_commands_the_slurm_launcher_says_what_to_install() {
    let tmp = tempfile::tempdir().unwrap();
    let exp = experiment(tmp.path());
    let o = Command::new(env!("CARGO_BIN_EXE_relab"))
        .args(["run", arg(&exp), "--out", arg(&tmp.path().join("sweep")), "--no-cache"])
        .env("PATH", tmp.path())
        .output()
        .unwrap();
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("`sbatch` is not on PATH: the Slurm launcher needs Slurm's commands (install Slurm")
            && err.contains("`launcher: local`"),
        "{err}"
    );
}
