//! The text the Slurm launcher hands to `sbatch`: the array task script (one sweep point per task, with the signal
//! trap that checkpoints and requeues that one task), the aggregation job's script, and the array specs, split to fit
//! the cluster's `MaxArraySize`. Pure functions of the manifest and the settings, so the tests compare exact text.

use std::fmt::Write as _;
use std::path::Path;

use relab_core::experiment::SlurmSettings;

use super::manifest::Point;

/// The folder inside the sweep folder holding the scripts, Slurm's own output and the submitted job ids.
pub const DIR: &str = "slurm";
pub const TASK_SCRIPT: &str = "task.sh";
pub const REPORT_SCRIPT: &str = "report.sh";

/// `text` as one shell word.
pub fn quote(text: &str) -> String {
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_./=:,+@%".contains(&b)) {
        return text.to_string();
    }
    format!("'{}'", text.replace('\'', r"'\''"))
}

fn words(args: &[String]) -> String {
    args.iter().map(|a| quote(a)).collect::<Vec<_>>().join(" ")
}

/// The `#SBATCH` lines every job of the sweep shares (where it runs and on whose account).
fn placement(s: &SlurmSettings) -> Vec<String> {
    let mut lines = Vec::new();
    for (option, value) in [("partition", &s.partition), ("account", &s.account), ("qos", &s.qos)] {
        if let Some(v) = value {
            lines.push(format!("--{option}={v}"));
        }
    }
    lines
}

/// The array task script: task `RELAB_OFFSET + SLURM_ARRAY_TASK_ID` runs point of that index of `points` (the
/// manifest's, all of them, so that one script serves every array and every resubmission).
pub fn task_script(sweep_dir: &Path, name: &str, points: &[Point], s: &SlurmSettings) -> String {
    let sweep = sweep_dir.to_string_lossy();
    let out = sweep_dir.join(DIR).join("%A_%a.out");
    let mut options = vec![
        format!("--job-name=relab-{name}"),
        format!("--output={}", out.display()),
        "--open-mode=append".to_string(),
        "--requeue".to_string(),
        format!("--signal=B:{}@{}", s.signal, s.grace),
    ];
    options.extend(placement(s));
    let resources = [
        ("time", s.time.clone()),
        ("mem", s.mem.clone()),
        ("cpus-per-task", s.cpus.map(|c| c.to_string())),
        ("gres", s.gres.clone()),
    ];
    for (option, value) in resources {
        if let Some(v) = value {
            options.push(format!("--{option}={v}"));
        }
    }
    options.extend(s.sbatch.iter().cloned());
    let mut t = String::from("#!/bin/bash\n");
    let _ = writeln!(t, "# One point of the sweep {sweep} per array task; written by relab (launcher: slurm).");
    let _ = writeln!(t, "# Task RELAB_OFFSET + SLURM_ARRAY_TASK_ID runs point of that index of sweep.json.");
    for o in &options {
        let _ = writeln!(t, "#SBATCH {o}");
    }
    for line in &s.setup {
        let _ = writeln!(t, "{line}");
    }
    let _ = writeln!(t, "sweep={}", quote(&sweep));
    t.push_str("case $(( ${RELAB_OFFSET:-0} + SLURM_ARRAY_TASK_ID )) in\n");
    for (i, p) in points.iter().enumerate() {
        let _ = writeln!(
            t,
            "  {i}) label={}; folder={}; command=({}) ;;",
            quote(&p.label),
            quote(&p.folder),
            words(&p.command)
        );
    }
    t.push_str(
        "  *) echo \"relab: task ${SLURM_ARRAY_TASK_ID} (offset ${RELAB_OFFSET:-0}) is no point of $sweep\" >&2; exit 2 ;;\n",
    );
    t.push_str("esac\n");
    let _ = write!(
        t,
        r#"task="${{SLURM_ARRAY_JOB_ID}}_${{SLURM_ARRAY_TASK_ID}}"
restarts=${{SLURM_RESTART_COUNT:-0}}
resume=()
if [ "$restarts" -gt 0 ] || [ "${{RELAB_RESUME:-0}}" = 1 ]; then resume=(--resume); fi
exec >>"$sweep/$folder.log" 2>&1
echo "relab sweep: starting $label${{resume[*]:+ with --resume}} (Slurm task $task on $(hostname), restart $restarts)"
export RAYON_NUM_THREADS="${{SLURM_CPUS_PER_TASK:-1}}" NO_COLOR=1
caught=
on_signal() {{
  caught=$1 caught_at=$(date +%s) interrupted=1
  echo "relab sweep: SIG$1 received: the point writes its checkpoint and stops"
  kill -USR2 "$child" 2>/dev/null
}}
"#
    );
    let _ = writeln!(t, "trap 'on_signal {0}' {0}", s.signal);
    if s.signal != "TERM" {
        t.push_str("trap 'on_signal TERM' TERM\n");
    }
    let _ = write!(
        t,
        r#""${{command[@]}}" "${{resume[@]}}" &
child=$!
echo "$child" >"$sweep/$folder.pid"
echo "$(hostname) $task" >"$sweep/$folder.node"
status=
while :; do
  interrupted=
  wait "$child"; code=$?
  [ "$code" -eq 127 ] && [ -n "$status" ] && break
  status=$code
  [ -z "$interrupted" ] && break
done
rm -f "$sweep/$folder.pid" "$sweep/$folder.node"
echo "relab sweep: $label ended: exit code $status"
if [ -z "$caught" ] || [ "$status" -le 128 ]; then exit "$status"; fi
"#
    );
    if s.signal != "TERM" {
        t.push_str(
            "if [ \"$caught\" = TERM ]; then\n  echo \"relab sweep: stopped by SIGTERM (scancel, or a preemption Slurm \
             requeues itself); not requeued here\"\n  exit \"$status\"\nfi\n",
        );
    }
    let _ = write!(
        t,
        r#"end=$(date -d "$(squeue -h -j "$task" -o %e 2>/dev/null)" +%s 2>/dev/null || echo 0)
if [ "$end" -gt 0 ] && [ $(( end - caught_at )) -le {margin} ]; then
  timeouts=$(cat "$sweep/$folder.timeouts" 2>/dev/null || echo 0)
  if [ "$timeouts" -ge {max} ]; then
    echo "relab sweep: time limit; not requeued: it was requeued at its time limit $timeouts time(s) already (slurm.timeout_requeues: {max})"
    exit "$status"
  fi
  echo $(( timeouts + 1 )) >"$sweep/$folder.timeouts"
  echo "relab sweep: time limit; requeued ($(( timeouts + 1 )) of {max} at the time limit)"
else
  echo "relab sweep: preempted (SIG$caught ahead of the time limit); requeued"
fi
scontrol requeue "$task"
exit "$status"
"#,
        margin = s.grace as u64 + 60,
        max = s.timeout_requeues
    );
    t
}

/// The aggregation job's script: the sweep's report, once every array task has ended.
pub fn report_script(sweep_dir: &Path, name: &str, relab: &str, s: &SlurmSettings) -> String {
    let mut options = vec![
        format!("--job-name=relab-{name}-report"),
        format!("--output={}", sweep_dir.join(DIR).join("report-%j.out").display()),
    ];
    options.extend(placement(s));
    let mut t = String::from("#!/bin/bash\n");
    let _ = writeln!(t, "# The report of the sweep {}; written by relab (launcher: slurm).", sweep_dir.display());
    for o in &options {
        let _ = writeln!(t, "#SBATCH {o}");
    }
    for line in &s.setup {
        let _ = writeln!(t, "{line}");
    }
    let _ = writeln!(t, "exec {} report {}", quote(relab), quote(&sweep_dir.to_string_lossy()));
    t
}

/// One `sbatch --array`: the task indices, relative to `offset`, of the points it runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Array {
    pub offset: usize,
    /// `0-3,5,7-9%2`.
    pub spec: String,
}

/// The arrays that run the points of `indices` (sorted, distinct): every task index below `max_array_size` (the
/// cluster's `MaxArraySize`), so points from `k·max` on go to an array of offset `k·max`; each array runs at most
/// `parallel` tasks at once.
pub fn arrays(indices: &[usize], max_array_size: usize, parallel: Option<usize>) -> Vec<Array> {
    let max = max_array_size.max(1);
    let mut arrays: Vec<(usize, Vec<usize>)> = Vec::new();
    for &i in indices {
        let offset = i / max * max;
        match arrays.last_mut() {
            Some((o, tasks)) if *o == offset => tasks.push(i - offset),
            _ => arrays.push((offset, vec![i - offset])),
        }
    }
    arrays
        .into_iter()
        .map(|(offset, tasks)| {
            let mut spec = ranges(&tasks);
            if let Some(p) = parallel {
                let _ = write!(spec, "%{p}");
            }
            Array { offset, spec }
        })
        .collect()
}

/// `0,1,2,3,5,7,8,9` as `0-3,5,7-9`.
fn ranges(tasks: &[usize]) -> String {
    let mut parts = Vec::new();
    let mut i = 0;
    while i < tasks.len() {
        let mut j = i;
        while j + 1 < tasks.len() && tasks[j + 1] == tasks[j] + 1 {
            j += 1;
        }
        parts.push(if i == j { tasks[i].to_string() } else { format!("{}-{}", tasks[i], tasks[j]) });
        i = j + 1;
    }
    parts.join(",")
}

/// The arguments of the `sbatch` that submits `array` of the task script.
pub fn array_args(array: &Array, script: &Path, resume: bool) -> Vec<String> {
    let mut export = format!("--export=ALL,RELAB_OFFSET={}", array.offset);
    if resume {
        export.push_str(",RELAB_RESUME=1");
    }
    vec!["--parsable".into(), format!("--array={}", array.spec), export, script.to_string_lossy().into_owned()]
}

/// The arguments of the `sbatch` that submits the aggregation job after the arrays `jobs`.
pub fn report_args(jobs: &[String], script: &Path) -> Vec<String> {
    vec![
        "--parsable".into(),
        format!("--dependency=afterany:{}", jobs.join(":")),
        script.to_string_lossy().into_owned(),
    ]
}

/// `MaxArraySize` from `scontrol show config`'s output (Slurm's default, 1001, when it is not there).
pub fn max_array_size(config: &str) -> usize {
    config
        .lines()
        .filter_map(|l| l.split_once('='))
        .find(|(k, _)| k.trim() == "MaxArraySize")
        .and_then(|(_, v)| v.trim().parse().ok())
        .unwrap_or(1001)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(label: &str, folder: &str) -> Point {
        let command = ["/bin/relab", "run", "/e/x.yaml", "--point", label, "--out", &format!("/s/{folder}")];
        Point { label: label.into(), folder: folder.into(), command: command.map(String::from).to_vec() }
    }

    #[test]
    fn arrays_compress_ranges_and_split_at_max_array_size() {
        let spec = |offset, spec: &str| Array { offset, spec: spec.into() };
        assert_eq!(arrays(&[0, 1, 2, 3, 5, 7, 8, 9], 1001, Some(2)), [spec(0, "0-3,5,7-9%2")]);
        assert_eq!(arrays(&[4], 1001, None), [spec(0, "4")]);
        // MaxArraySize 4: task indices 0..=3, so points 4.. go to arrays of offsets 4 and 8.
        let all: Vec<usize> = (0..10).collect();
        assert_eq!(arrays(&all, 4, Some(3)), [spec(0, "0-3%3"), spec(4, "0-3%3"), spec(8, "0-1%3")]);
        assert_eq!(arrays(&[1, 6, 7, 9], 4, None), [spec(0, "1"), spec(4, "2-3"), spec(8, "1")]);
        assert_eq!(arrays(&[], 4, None), []);
    }

    #[test]
    fn sbatch_arguments_carry_the_offset_resume_and_dependencies() {
        let a = Array { offset: 1001, spec: "0-4%2".into() };
        assert_eq!(
            array_args(&a, Path::new("/s/slurm/task.sh"), true),
            ["--parsable", "--array=0-4%2", "--export=ALL,RELAB_OFFSET=1001,RELAB_RESUME=1", "/s/slurm/task.sh"]
        );
        assert_eq!(
            report_args(&["11".into(), "12".into()], Path::new("/s/slurm/report.sh")),
            ["--parsable", "--dependency=afterany:11:12", "/s/slurm/report.sh"]
        );
        assert_eq!(max_array_size("AccountingStorageType   = none\nMaxArraySize            = 40001\n"), 40001);
        assert_eq!(max_array_size("MaxJobCount = 10000\n"), 1001);
    }

    #[test]
    fn quoting_keeps_plain_words_and_single_quotes_the_rest() {
        assert_eq!(quote("seed=1,stages.train.plugin=fixmatch"), "seed=1,stages.train.plugin=fixmatch");
        assert_eq!(quote("a b"), "'a b'");
        assert_eq!(quote("it's"), r"'it'\''s'");
        assert_eq!(quote(""), "''");
        assert_eq!(quote("$HOME"), "'$HOME'");
    }

    #[test]
    fn the_report_script_runs_relab_report_after_the_setup() {
        let s = SlurmSettings {
            partition: Some("cpu".into()),
            qos: Some("low".into()),
            cpus: Some(8),
            setup: vec!["module load x".into()],
            ..SlurmSettings::default()
        };
        assert_eq!(
            report_script(Path::new("/s"), "sw", "/bin/relab", &s),
            "#!/bin/bash\n# The report of the sweep /s; written by relab (launcher: slurm).\n\
             #SBATCH --job-name=relab-sw-report\n#SBATCH --output=/s/slurm/report-%j.out\n#SBATCH --partition=cpu\n\
             #SBATCH --qos=low\nmodule load x\nexec /bin/relab report /s\n"
        );
    }

    #[test]
    fn the_task_script_maps_tasks_to_points_and_requeues_only_its_own_task() {
        let s = SlurmSettings {
            partition: Some("gpu".into()),
            account: Some("lab".into()),
            time: Some("4:00:00".into()),
            mem: Some("8G".into()),
            cpus: Some(4),
            gres: Some("gpu:1".into()),
            sbatch: vec!["--constraint=a100".into()],
            setup: vec!["module load cuda".into()],
            grace: 90,
            timeout_requeues: 2,
            ..SlurmSettings::default()
        };
        let points = [point("seed=1", "seed=1"), point("seed=2 it's", "seed=2")];
        let script = task_script(Path::new("/s"), "sw", &points, &s);
        let head = "#!/bin/bash\n\
            # One point of the sweep /s per array task; written by relab (launcher: slurm).\n\
            # Task RELAB_OFFSET + SLURM_ARRAY_TASK_ID runs point of that index of sweep.json.\n\
            #SBATCH --job-name=relab-sw\n#SBATCH --output=/s/slurm/%A_%a.out\n#SBATCH --open-mode=append\n\
            #SBATCH --requeue\n#SBATCH --signal=B:USR2@90\n#SBATCH --partition=gpu\n#SBATCH --account=lab\n\
            #SBATCH --time=4:00:00\n#SBATCH --mem=8G\n#SBATCH --cpus-per-task=4\n#SBATCH --gres=gpu:1\n\
            #SBATCH --constraint=a100\nmodule load cuda\nsweep=/s\n\
            case $(( ${RELAB_OFFSET:-0} + SLURM_ARRAY_TASK_ID )) in\n  \
            0) label=seed=1; folder=seed=1; command=(/bin/relab run /e/x.yaml --point seed=1 --out /s/seed=1) ;;\n  \
            1) label='seed=2 it'\\''s'; folder=seed=2; command=(/bin/relab run /e/x.yaml --point 'seed=2 it'\\''s' --out /s/seed=2) ;;\n";
        assert!(script.starts_with(head), "{script}");
        for line in [
            "trap 'on_signal USR2' USR2\ntrap 'on_signal TERM' TERM\n",
            "  kill -USR2 \"$child\" 2>/dev/null\n",
            "export RAYON_NUM_THREADS=\"${SLURM_CPUS_PER_TASK:-1}\" NO_COLOR=1\n",
            "if [ \"$end\" -gt 0 ] && [ $(( end - caught_at )) -le 150 ]; then\n",
            "  if [ \"$timeouts\" -ge 2 ]; then\n",
            "scontrol requeue \"$task\"\nexit \"$status\"\n",
        ] {
            assert!(script.contains(line), "{line}");
        }
        assert_eq!(script.matches("scontrol requeue").count(), 1);
        assert!(script.contains("task=\"${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID}\"\n"));
        // With TERM as the signal, one trap, and no separate SIGTERM case.
        let term = task_script(Path::new("/s"), "sw", &points, &SlurmSettings { signal: "TERM".into(), ..s });
        assert!(term.contains("#SBATCH --signal=B:TERM@90\n") && term.matches("trap '").count() == 1, "{term}");
        assert!(!term.contains("if [ \"$caught\" = TERM ]"));
    }
}
