//! What the figures ran on: cores, memory, OS, toolchain versions, date, commit.

use std::path::Path;
use std::process::Command;

#[derive(Debug, Clone)]
pub struct Machine {
    pub cpu_model: String,
    pub cores: usize,
    pub memory_total_mib: u64,
    pub os: String,
    pub kernel: String,
    pub rustc: String,
    pub anvil: String,
    pub date_utc: String,
    pub commit: String,
    pub profile: String,
}

fn read(path: &str) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

fn first_line_of(cmd: &Path, args: &[&str]) -> String {
    Command::new(cmd)
        .args(args)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.lines().next().map(|l| l.trim().to_owned()))
        .unwrap_or_else(|| "unknown".to_owned())
}

impl Machine {
    pub fn detect(repo: &Path, anvil_bin: &Path, profile: &str) -> Self {
        let cpuinfo = read("/proc/cpuinfo");
        let cpu_model = cpuinfo
            .lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_owned())
            .unwrap_or_else(|| "unknown".to_owned());
        let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
        let memory_total_mib = read("/proc/meminfo")
            .lines()
            .find(|l| l.starts_with("MemTotal:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kib| kib.parse::<u64>().ok())
            .map(|kib| kib / 1024)
            .unwrap_or(0);
        let os = read("/etc/os-release")
            .lines()
            .find(|l| l.starts_with("PRETTY_NAME="))
            .map(|l| l.trim_start_matches("PRETTY_NAME=").trim_matches('"').to_owned())
            .unwrap_or_else(|| std::env::consts::OS.to_owned());
        let kernel = read("/proc/sys/kernel/osrelease").trim().to_owned();
        let rustc = first_line_of(Path::new("rustc"), &["--version"]);
        let anvil = first_line_of(anvil_bin, &["--version"]);
        let date_utc = time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_else(|_| "unknown".to_owned());
        let mut commit = first_line_of(
            Path::new("git"),
            &["-C", &repo.to_string_lossy(), "rev-parse", "--short", "HEAD"],
        );
        let dirty = Command::new("git")
            .args([
                "-C",
                &repo.to_string_lossy(),
                "status",
                "--porcelain",
                "--untracked-files=no",
            ])
            .output()
            .map(|o| !o.stdout.is_empty())
            .unwrap_or(false);
        if dirty {
            commit.push_str(" (with uncommitted changes)");
        }
        Self {
            cpu_model,
            cores,
            memory_total_mib,
            os,
            kernel,
            rustc,
            anvil,
            date_utc,
            commit,
            profile: profile.to_owned(),
        }
    }

    pub fn markdown(&self) -> String {
        format!(
            "| | |\n| --- | --- |\n\
             | date (UTC) | {} |\n\
             | commit | {} |\n\
             | CPU | {} × {} |\n\
             | memory | {} MiB |\n\
             | OS | {} (kernel {}) |\n\
             | rustc | {} |\n\
             | anvil | {} |\n\
             | build profile | {} |\n",
            self.date_utc,
            self.commit,
            self.cores,
            self.cpu_model,
            self.memory_total_mib,
            self.os,
            self.kernel,
            self.rustc,
            self.anvil,
            self.profile
        )
    }
}
